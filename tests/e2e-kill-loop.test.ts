// SIGKILL loop: the all-in-one process (`src/main.ts`) and a worker process (`src/main.ts worker`), real children, killed at random moments at least 20 times during running batches; after every kill the stored snapshot equals its history replayed through the machine, the counters add up and match the task rows, no task is counted twice, and the batch completes.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { Redis } from "ioredis";
import { ensureUiBuilt, UI_DIST } from "../src/server/ui";
import { startFakeOpenAI, type FakeOpenAI } from "./support/fake-llm";
import { createHarness, testLogger, type Harness } from "./support/harness";
import { expectBatchInvariants } from "./support/invariants";
import { uploadBatch } from "./support/e2e";
import { waitFor, waitForStatus, type TestSystem } from "./support/system";
import { redisUrl } from "./support/urls";

type Role = "all" | "worker";
const KILLS = 20;
const N = 30;
const ROOT = path.join(__dirname, "..");

let h: Harness;
let fake: FakeOpenAI;
let env: Record<string, string>;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  // The all-in-one serves the UI and builds it when missing; build it once here, not at every restart.
  await ensureUiBuilt(UI_DIST, testLogger);
  h = await createHarness();
  fake = await startFakeOpenAI({ latencyMs: 250 });
  env = {
    DATABASE_URL: h.db.url,
    REDIS_URL: redisUrl(),
    QUEUE_PREFIX: `tk${randomBytes(4).toString("hex")}`,
    LOG_LEVEL: "info",
    PORT: "0",
    // Two processes on the shared PostgreSQL, restarted over and over: keep their pools small.
    DATABASE_POOL_SIZE: "3",
    HOST: "127.0.0.1",
    DISPATCH_WINDOW: "6",
    JOB_LOCK_MS: "1000",
    // Kills on purpose, many per document: what is proven here is that none breaks an invariant,
    // not the bound on jobs whose workers keep dying (tests/hostile-documents.test.ts proves that).
    JOB_MAX_STALLS: "1000",
    RECONCILE_INTERVAL_MS: "500",
    EFFECTS_SWEEP_MS: "200",
    STAGING_CONCURRENCY: "3",
    ANALYSIS_CONCURRENCY: "3",
    LLM_PROVIDER: "openai",
    OPENAI_BASE_URL: fake.url,
    OPENAI_API_KEY: "test-key",
    LLM_TIMEOUT_MS: "5000",
  };
}, 180_000);

afterAll(async () => {
  await Promise.all([...children].map(kill));
  const redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  const keys = await redis.keys(`${env.QUEUE_PREFIX}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
  await fake?.close();
  await h?.close();
});

interface Proc {
  child: ChildProcess;
  /** Set once it said it is up (its log line). */
  up: boolean;
  ready: Promise<void>;
}

/** Starts `src/main.ts <role>`; `ready` resolves once it says it is up. */
function launch(role: Role): Proc {
  // tsx as a loader, not its CLI, so that SIGKILL hits the program itself.
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "src", "main.ts"), role], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.add(child);
  child.on("exit", () => children.delete(child));
  const marker = role === "all" ? "Tranche is listening" : "Tranche worker is running";
  const proc: Proc = { child, up: false, ready: Promise.resolve() };
  proc.ready = new Promise((resolve, reject) => {
    let seen = "";
    const onData = (chunk: Buffer) => {
      seen = (seen + chunk.toString()).slice(-4096);
      if (!seen.includes(marker)) return;
      child.stdout!.off("data", onData);
      child.stdout!.resume();
      proc.up = true;
      resolve();
    };
    child.stdout!.on("data", onData);
    child.once("exit", (code, signal) => reject(new Error(`${role} exited (${code ?? signal}) before it was up`)));
  });
  return proc;
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(`${KILLS} SIGKILLs of the all-in-one and a worker mid-batch break no invariant`, async () => {
  const procs: Record<Role, Proc> = { all: launch("all"), worker: launch("worker") };
  await Promise.all([procs.all.ready, procs.worker.ready]);
  const id = await uploadBatch(h as unknown as TestSystem, { texts: N });
  await h.engine.service.requestStateChange(id, "stage");
  let kills = 0;
  let runs = 1;
  const killed: Record<Role, number> = { all: 0, worker: 0 };
  const startedAt = Date.now();
  while (kills < KILLS) {
    const b = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
    // Keep a run going for every kill: a finished run is run again, a staged one is started.
    if (b.status === "COMPLETED") {
      await h.engine.service.requestStateChange(id, "rerun");
      runs++;
    } else if (b.status === "STAGED") {
      await h.engine.service.requestStateChange(id, "run");
    }
    await sleep(300 + Math.random() * 1500);
    // Kill one that is up, at a random moment of its work; the other may still be starting.
    const up = (["all", "worker"] as const).filter((r) => procs[r].up);
    if (!up.length) {
      await Promise.race([procs.all.ready, procs.worker.ready]);
      continue;
    }
    const role = up[Math.floor(Math.random() * up.length)]!;
    await kill(procs[role].child);
    kills++;
    killed[role]++;
    await expectBatchInvariants(h.db.prisma, id);
    const after = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
    process.stderr.write(`kill ${kills}: ${role} at ${after.status} ${after.succeeded}/${after.total} (run ${after.runId}); invariants hold\n`);
    procs[role] = launch(role);
    procs[role].ready.catch(() => undefined);
  }

  // Let the last run finish: a staged batch of the last rerun starts by itself, a plain stage needs `run`.
  await waitFor(
    "the last run to complete",
    async () => {
      const b = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
      if (b.status === "STAGED") await h.engine.service.requestStateChange(id, "run");
      return b.status === "COMPLETED";
    },
    120_000,
  );
  const b = await waitForStatus(h, id, "COMPLETED");
  expect(b).toMatchObject({ total: N, succeeded: N, failed: 0, pending: 0, running: 0, cancelled: 0, runId: runs });
  await expectBatchInvariants(h.db.prisma, id);
  const tasks = await h.db.prisma.task.findMany({ where: { batchId: id }, select: { runId: true, status: true } });
  expect(tasks).toHaveLength(N);
  expect(tasks.every((t) => t.runId === runs && t.status === "succeeded")).toBe(true);
  process.stdout.write(
    `kill loop: ${kills} SIGKILLs (all-in-one ${killed.all}, worker ${killed.worker}) over ${runs} runs in ${Math.round((Date.now() - startedAt) / 1000)} s; ` +
      `${fake.requests.length} provider calls for ${N * runs} tasks; invariants held after every kill; last run: ${N} tasks, each counted once\n`,
  );
  await Promise.all([kill(procs.all.child), kill(procs.worker.child)]);
}, 420_000);
