/**
 * A whole Tranche on a private database and a private queue prefix: the engine, the HTTP
 * app, the background (workers, relay, reconciler) and a fake OpenAI server on loopback, so
 * the real SDK code path runs. `close()` closes all of it and deletes its Redis keys.
 */
import { randomBytes } from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { Redis } from "ioredis";
import { batchFingerprint } from "../../src/cache/fingerprint";
import { loadConfig } from "../../src/config";
import { createPricingResolver, loadPriceTable } from "../../src/pricing";
import type { Metrics } from "../../src/metrics";
import { startBackground, type Background } from "../../src/workers";
import { startFakeOpenAI, type FakeBehaviour, type FakeOpenAI } from "./fake-llm";
import type { TestDatabase } from "./db";
import { createHarness, testLogger, type Harness } from "./harness";
import { redisUrl } from "./urls";

export interface SystemOptions {
  maxRunningBatches?: number;
  /** Run workers in this process (default true); false to run them only in child processes. */
  workers?: boolean;
  fake?: FakeBehaviour;
  env?: Record<string, string>;
  /** Feed these metrics from the engine, queues, reconciler and provider calls, as a real process does. */
  metrics?: Metrics;
  /** A database of its own (e.g. on a private PostgreSQL) instead of a clone of the template. */
  database?: TestDatabase;
}

export interface TestSystem extends Harness {
  fake: FakeOpenAI;
  background: Background;
  prefix: string;
  /** The environment a child worker process needs to join this system. */
  env: Record<string, string>;
  /** Starts `npm run worker` equivalent as a real child process. */
  spawnWorker(extraEnv?: Record<string, string>): ChildProcess;
  redis: Redis;
}

export async function createSystem(options: SystemOptions = {}): Promise<TestSystem> {
  const fake = await startFakeOpenAI(options.fake ?? {});
  const prefix = `tt${randomBytes(4).toString("hex")}`;
  const base: Record<string, string> = {
    REDIS_URL: redisUrl(),
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    MAX_RUNNING_BATCHES: String(options.maxRunningBatches ?? 1),
    DISPATCH_WINDOW: "4",
    JOB_LOCK_MS: "2000",
    RECONCILE_INTERVAL_MS: "500",
    EFFECTS_SWEEP_MS: "200",
    STAGING_CONCURRENCY: "2",
    ANALYSIS_CONCURRENCY: "3",
    LLM_PROVIDER: "openai",
    OPENAI_BASE_URL: fake.url,
    OPENAI_API_KEY: "test-key",
    LLM_TIMEOUT_MS: "5000",
    LLM_MAX_RETRIES: "3",
    ...options.env,
  };
  // The store prices with the same configuration the workers get (only its LLM settings matter here).
  const llm = loadConfig(base);
  const h = await createHarness({
    maxRunningBatches: options.maxRunningBatches ?? 1,
    database: options.database,
    pricing: createPricingResolver(llm, loadPriceTable(llm.LLM_PRICES_FILE)),
    // The store keys the result cache as a real process does, from the same configuration.
    fingerprint: (analysis) => batchFingerprint(analysis, llm),
  });
  const env: Record<string, string> = { DATABASE_URL: h.db.url, ...base };
  const config = loadConfig(env);
  const background = await startBackground({ prisma: h.db.prisma, engine: h.engine, config, logger: testLogger, runWorkers: options.workers ?? true, metrics: options.metrics });
  const redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  const children = new Set<ChildProcess>();

  return {
    ...h,
    fake,
    background,
    prefix,
    env,
    redis,
    spawnWorker(extraEnv = {}) {
      const root = path.join(__dirname, "..", "..");
      // tsx as a loader, not its CLI: the CLI runs the program in a child of its own, and a
      // SIGKILL would then hit only the wrapper.
      const child = spawn(process.execPath, ["--import", "tsx", path.join(root, "src", "main.ts"), "worker"], {
        cwd: root,
        env: { ...process.env, ...env, ...extraEnv },
        stdio: ["ignore", "ignore", "inherit"],
      });
      children.add(child);
      child.on("exit", () => children.delete(child));
      return child;
    },
    async close() {
      await Promise.all([...children].map((child) => new Promise((resolve) => {
        child.once("exit", resolve);
        child.kill("SIGKILL");
      })));
      await background.close();
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
      await fake.close();
      await h.close();
    },
  };
}

/** Polls until `check` returns a value (not undefined/false), or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the batch reaches `status` (and `substate`, when given); returns its row. */
export function waitForStatus(s: Harness, batchId: string, status: string, timeoutMs?: number) {
  return waitFor(
    `batch ${batchId} to reach ${status}`,
    async () => {
      const b = await s.db.prisma.batch.findUnique({ where: { id: batchId } });
      return b && b.status === status ? b : undefined;
    },
    timeoutMs,
  );
}
