/**
 * A Tranche with API keys on, built as `npm start` builds its HTTP surface (createTrancheApp),
 * on a private database and queue prefix; and `spawnApi`, a second API process
 * (`node --import tsx src/main.ts api`) on the same database and Redis.
 */
import { randomBytes } from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import path from "node:path";
import { Redis } from "ioredis";
import { createKeyStore, type KeyStore } from "../../src/auth/api-keys";
import { createAuth, type Auth } from "../../src/auth/guard";
import { resolveAuthMode } from "../../src/auth/mode";
import type { Role } from "../../src/auth/roles";
import { loadConfig } from "../../src/config";
import { createLiveStream } from "../../src/server/live";
import { createTrancheApp } from "../../src/server/tranche-app";
import { createQueues } from "../../src/workers/queues";
import { createHarness, testConfig, testLogger, type Harness } from "./harness";
import { redisUrl } from "./urls";

export const ADMIN_KEY = `admin-${randomBytes(24).toString("hex")}`;

export interface AuthSystem {
  harness: Harness;
  app: ReturnType<typeof createTrancheApp>;
  auth: Auth;
  keys: KeyStore;
  prefix: string;
  /** The environment another process needs to join this one. */
  env: Record<string, string>;
  /** A new key, straight from the key store. */
  key(role: Role, tenant: string, name?: string): Promise<{ id: string; key: string }>;
  close(): Promise<void>;
}

export async function createAuthSystem(env: Record<string, string> = {}): Promise<AuthSystem> {
  const harness = await createHarness();
  const prefix = `ta${randomBytes(4).toString("hex")}`;
  const fullEnv: Record<string, string> = {
    DATABASE_URL: harness.db.url,
    REDIS_URL: redisUrl(),
    QUEUE_PREFIX: prefix,
    ADMIN_API_KEY: ADMIN_KEY,
    RATE_LIMIT_PER_MINUTE: "0",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    ...env,
  };
  const config = { ...loadConfig(fullEnv), ...testConfig };
  const redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  const queues = createQueues(redis, prefix);
  const live = await createLiveStream({ databaseUrl: harness.db.url, prisma: harness.db.prisma, logger: testLogger, heartbeatMs: 200 });
  const keys = createKeyStore({ prisma: harness.db.prisma });
  const stopListening = await keys.listen(harness.db.url, testLogger);
  const auth = createAuth({ mode: resolveAuthMode(config), keys });
  const app = createTrancheApp({ engine: harness.engine, config, logger: testLogger, auth, keys, live, queues: queues.all, redis });
  return {
    harness,
    app,
    auth,
    keys,
    prefix,
    env: fullEnv,
    async key(role, tenant, name = `${role}-${tenant}`) {
      const created = await keys.create({ name, role, tenant });
      return { id: created.id, key: created.key };
    },
    async close() {
      await live.close();
      await stopListening();
      await queues.close();
      const leftover = await redis.keys(`${prefix}:*`);
      if (leftover.length) await redis.del(...leftover);
      await redis.quit();
      await harness.close();
    },
  };
}

/** A free TCP port on loopback (free when asked; good enough for a test's own child). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface ApiProcess {
  child: ChildProcess;
  url: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code once the process ends. */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

const ROOT = path.join(__dirname, "..", "..");

/** Starts `node --import tsx src/main.ts api` with `env`; `ready` waits until it listens. */
export async function spawnApi(env: Record<string, string>, options: { ready?: boolean; timeoutMs?: number } = {}): Promise<ApiProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "src", "main.ts"), "api"], {
    cwd: ROOT,
    // info: readiness is read from the "listening" log line.
    env: { ...process.env, ...env, LOG_LEVEL: "info", PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const proc: ApiProcess = {
    child,
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
  if (options.ready ?? true) {
    // Generous: a child compiles TypeScript on start, and CI shares two cores with everything else.
    const deadline = Date.now() + (options.timeoutMs ?? 120_000);
    while (!/Tranche is listening/.test(output)) {
      if (child.exitCode !== null) throw new Error(`the API process exited with ${child.exitCode}:\n${output}`);
      if (Date.now() > deadline) {
        await proc.stop();
        throw new Error(`the API process did not start listening:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return proc;
}
