/**
 * Benchmark (not a test; CI does not run it): documents per second through a whole Tranche, and
 * what it costs compared with doing the same work with no state machine.
 *
 * Everything runs in this one process against local PostgreSQL (a fresh `tranche_bench` database,
 * dropped, re-created and migrated) and local Redis (a private BullMQ prefix whose keys are deleted
 * at the end), with the fake OpenAI server on loopback at zero latency so that the real SDK path runs.
 * Settings: STAGING_CONCURRENCY=16, ANALYSIS_CONCURRENCY=32, DISPATCH_WINDOW=256, MAX_RUNNING_BATCHES=8,
 * DATABASE_POOL_SIZE=20 (each overridable by the environment variable of that name).
 *
 *   1. ours, 1 batch of N:    stage → STAGED, then run → COMPLETED, timed from the action to the commit
 *                              that reaches the status (engine.onCommit, no polling).
 *   2. raw baseline, 1×N:      plain BullMQ workers + plain `pg`, same concurrency and job options (addBulk of
 *                              every job up front; SELECT + extract + chunk + one UPDATE per document; SELECT +
 *                              provider call + one UPDATE per task).
 *   3. ours, 8 batches of N/8 at once: the same as 1, all staged and run together.
 *   4. control latency:        a batch of N is staged and run; for its WHOLE analysis, `pause` then `resume` go
 *                              through the real HTTP API (createApp on port 0), pairs ~100 ms apart, until the batch
 *                              completes (p50/p99/max over every pair, not only the first ones).
 *   5. processes (procs1, procs5): Tranche in real child processes (`src/main.ts all`, and 1 `api` + 4 `worker`),
 *      driven only over HTTP (documents added in JSON pages of 1,000); peak RSS of EACH Tranche process from
 *      /proc/<pid>/status, and the API process's RSS at rest and after the documents were added (bench/processes.ts).
 *   6. per phase: peak RSS of this process (sampled every 100 ms), peak Redis `used_memory` (whole server), peak
 *      unfinished jobs in our queues, CPU of this process / the bench database's backends / Redis / the rest, and
 *      PostgreSQL transactions committed (pg_stat_database.xact_commit of the bench database).
 *
 * SQL per document event (ours 1×N and raw): pg_stat_statements is not loaded on these machines, so this process
 * counts every statement its pg clients send (pg's Client.prototype.query: the store's pool, Prisma's pg adapter,
 * the in-process workers, BEGIN/COMMIT included; the bench's monitor connections excluded), divided by the
 * accepted document events of the phase (DOCUMENT_STAGED while staging; TASK_STARTED + TASK_COMPLETED while
 * analysing, from the history table; for the raw baseline one event per job). Transactions per event come from
 * pg_stat_database.xact_commit of the bench database.
 *
 * Every batch's final row is checked (status, counters adding up, rows agreeing with counters, outbox,
 * task starts). Prints tables, writes bench/reports/<timestamp>.json, and exits 1 if a check failed.
 *
 *   npm run bench                 # N = 10000 (about 10 minutes on 2 cores)
 *   npm run bench -- 100000 --scenarios=procs1,procs5     # the 100,000-document batch, end to end
 *   npm run bench -- 2000         # or BENCH_DOCS=2000 npm run bench
 *   npm run bench -- 200 --smoke  # CI: every cheap scenario at N=200, exits 1 on any problem (well under a minute)
 *   DISPATCH_WINDOW=64 npm run bench -- 2000          # override a setting
 *   BENCH_SCENARIOS=ours1,raw BENCH_QUERY_STATS=1 npm run bench -- 2000
 *                                 # only some parts; time every engine query per phase
 *   npm run bench:store           # the actor-store micro-benchmark (bench/store.ts)
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { Queue, Worker, type Job } from "bullmq";
import { Redis } from "ioredis";
import { Client, Pool } from "pg";
import { loadConfig, type Config } from "../src/config";
import { PrismaPg } from "@prisma/adapter-pg";
import { createPrisma, ensureDatabase, migrate, PrismaClient } from "../src/db";
import { createEngine } from "../src/engine";
import { createLogger } from "../src/logger";
import { createApp } from "../src/server/app";
import { startBackground } from "../src/workers";
import { chunkText } from "../src/workers/chunk";
import { extractText } from "../src/workers/extract";
import { createRateLimiter, selectProvider } from "../src/workers/providers";
import { defaultJobOptions, jobIds, type Queues } from "../src/workers/queues";
import { startFakeOpenAI, type FakeOpenAI } from "../tests/support/fake-llm";
import { LAYOUTS, runLayout, type ProcessRun } from "./processes";

// ---------------------------------------------------------------------------------------------
// Settings

const ARGS = process.argv.slice(2);
const SMOKE = ARGS.includes("--smoke");
const flag = (name: string) => ARGS.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const positional = ARGS.find((a) => !a.startsWith("--"));
const N = Number(positional ?? process.env.BENCH_DOCS ?? (SMOKE ? 200 : 10_000));
if (!Number.isInteger(N) || N < 8) throw new Error(`documents: expected an integer ≥ 8, got ${positional ?? process.env.BENCH_DOCS}`);
const DB_URL = process.env.BENCH_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/tranche_bench";
const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const PREFIX = `bench${randomBytes(4).toString("hex")}`;
/** Longest wait for one batch (or group of batches) to reach a status before it is reported stuck. */
const WAIT_LIMIT_MS = Number(process.env.BENCH_WAIT_LIMIT_S ?? Math.max(300, N / 20)) * 1000;
const SPACING_MS = 100;
const BATCHES = 8;
/** Which parts to run (comma-separated): ours1, raw, ours8, control, procs1, procs5. All by default; the cheap ones with --smoke. */
const SCENARIOS = new Set(
  (flag("scenarios") ?? process.env.BENCH_SCENARIOS ?? (SMOKE ? "ours1,raw,control,procs1" : "ours1,raw,ours8,control,procs1,procs5"))
    .split(",")
    .map((x) => x.trim()),
);
/** Time every query our Prisma client sends (Prisma query events), per phase: where the store's transactions spend their time. */
const QUERY_STATS = process.env.BENCH_QUERY_STATS === "1";

const setting = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const SETTINGS = {
  STAGING_CONCURRENCY: setting("STAGING_CONCURRENCY", 16),
  ANALYSIS_CONCURRENCY: setting("ANALYSIS_CONCURRENCY", 32),
  DISPATCH_WINDOW: setting("DISPATCH_WINDOW", 256),
  MAX_RUNNING_BATCHES: setting("MAX_RUNNING_BATCHES", BATCHES),
  DATABASE_POOL_SIZE: setting("DATABASE_POOL_SIZE", 20),
};

const ANALYSIS = {
  instructions: "Summarize the document in one sentence and count its words.",
  output_schema: {
    type: "object",
    properties: { summary: { type: "string" }, words: { type: "integer" } },
    required: ["summary", "words"],
  },
};

// ---------------------------------------------------------------------------------------------
// Documents: small generated text of a few sentences, deterministic per index.

const WORDS = (
  "contract party agreement term clause notice payment invoice delivery service supplier customer " +
  "period renewal termination liability warranty schedule amount date shall may within days written " +
  "report quarter revenue growth market region product team review risk audit policy compliance data"
).split(" ");

function documentText(i: number): string {
  let seed = (i + 1) * 2654435761;
  const next = (m: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % m;
  };
  const sentences = 3 + next(4);
  const out: string[] = [];
  for (let s = 0; s < sentences; s++) {
    const words = Array.from({ length: 6 + next(9) }, () => WORDS[next(WORDS.length)]!);
    words[0] = words[0]!.charAt(0).toUpperCase() + words[0]!.slice(1);
    out.push(`${words.join(" ")}.`);
  }
  return `Document ${i}. ${out.join(" ")}`;
}

const httpDocuments = (count: number, tag: string) =>
  Array.from({ length: count }, (_, i) => ({ name: `${tag}-${String(i).padStart(5, "0")}.txt`, content: documentText(i) }));

const documents = (count: number, tag: string) =>
  Array.from({ length: count }, (_, i) => ({ name: `${tag}-${String(i).padStart(5, "0")}.txt`, mimeType: "text/plain", content: Buffer.from(documentText(i)) }));

// ---------------------------------------------------------------------------------------------
// Measuring: wall time, CPU of this process / PostgreSQL / Redis / the machine, event-loop use,
// PostgreSQL commits, and peaks of RSS and Redis memory sampled every 100 ms.

const CLK_TCK = 100;

/** The bench's own monitoring connections, left out of the statement counts. */
const monitorClients = new WeakSet<object>();

function machineCpu(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** CPU ticks used so far by every process whose command is one of `names` (PostgreSQL backends, redis-server). */
function processTicks(names: string[]): number {
  let ticks = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      if (!names.some((n) => comm.startsWith(n))) continue;
      const fields = stat.slice(close + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // The process exited while we looked.
    }
  }
  return ticks;
}

/** CPU ticks so far of each backend connected to the bench database (other databases' backends, e.g. tests running meanwhile, are left out). */
async function backendTicks(monitor: Pool): Promise<Map<number, number>> {
  const { rows } = await monitor.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database()");
  const ticks = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks.set(pid, Number(fields[11]) + Number(fields[12]));
    } catch {
      // Gone already.
    }
  }
  return ticks;
}

interface Peaks {
  rss: number;
  redis: number;
  /** Unfinished BullMQ jobs in our queues. */
  jobs: number;
}

interface PhaseMetrics {
  phase: string;
  seconds: number;
  /** CPU of this Node process, in cores (1.0 = one core busy all the time). */
  nodeCores: number;
  postgresCores: number;
  redisCores: number;
  /** Whole machine busy, in cores (of os.cpus().length). */
  machineCores: number;
  /** Busy cores not accounted for by this process, PostgreSQL or Redis: anything else running on the machine. */
  otherCores: number;
  /** Event-loop utilization of this process (0..1). */
  eventLoop: number;
  /** PostgreSQL transactions committed in the bench database (approximate: backends flush stats about once a second). */
  pgCommits: number;
  peakRssMb: number;
  /** used_memory of the whole Redis server (other users of the same Redis included). */
  peakRedisMb: number;
  /** Most unfinished jobs (waiting, active, delayed…) in our queues at once. */
  peakJobs: number;
}

const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;
const mb = (bytes: number) => round(bytes / 1048576, 1);

function createSampler(redis: Redis) {
  const active = new Set<Peaks>();
  const overall: Peaks = { rss: 0, redis: 0, jobs: 0 };
  active.add(overall);
  const queues = new Set<Queue>();
  let asking = false;
  const timer = setInterval(() => {
    const rss = process.memoryUsage().rss;
    for (const p of active) p.rss = Math.max(p.rss, rss);
    if (asking) return;
    asking = true;
    const memory = redis.info("memory").then((info) => Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0));
    // Jobs not yet finished in our queues (waiting, active, delayed…): what the dispatch window bounds.
    const jobs = Promise.all([...queues].map((q) => q.getJobCounts("waiting", "active", "delayed", "prioritized")));
    Promise.all([memory, jobs])
      .then(([used, counts]) => {
        const live = counts.reduce((a, c) => a + Object.values(c).reduce((x, y) => x + y, 0), 0);
        for (const p of active) {
          p.redis = Math.max(p.redis, used);
          p.jobs = Math.max(p.jobs, live);
        }
      })
      .catch(() => undefined)
      .finally(() => (asking = false));
  }, 100);
  return {
    overall,
    track(peaks: Peaks) {
      active.add(peaks);
      return () => active.delete(peaks);
    },
    watch(...qs: Queue[]) {
      for (const q of qs) queues.add(q);
      return () => qs.forEach((q) => queues.delete(q));
    },
    stop: () => clearInterval(timer),
  };
}

type Sampler = ReturnType<typeof createSampler>;

async function pgCommits(monitor: Pool): Promise<number> {
  const { rows } = await monitor.query<{ n: string }>("SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = current_database()");
  return Number(rows[0]?.n ?? 0);
}

async function startPhase(name: string, sampler: Sampler, monitor: Pool) {
  const peaks: Peaks = { rss: 0, redis: 0, jobs: 0 };
  const untrack = sampler.track(peaks);
  const commits0 = await pgCommits(monitor);
  const cpu0 = process.cpuUsage();
  const machine0 = machineCpu();
  const pg0 = await backendTicks(monitor);
  const redis0 = processTicks(["redis-server"]);
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  return async (): Promise<PhaseMetrics> => {
    const seconds = (performance.now() - t0) / 1000;
    const elu = performance.eventLoopUtilization(elu0);
    const cpu = process.cpuUsage(cpu0);
    const machine = machineCpu();
    const cores = os.cpus().length;
    const nodeCores = (cpu.user + cpu.system) / 1e6 / seconds;
    let pgTicks = 0;
    for (const [pid, ticks] of await backendTicks(monitor)) pgTicks += ticks - (pg0.get(pid) ?? 0);
    const postgresCores = pgTicks / CLK_TCK / seconds;
    const redisCores = (processTicks(["redis-server"]) - redis0) / CLK_TCK / seconds;
    const machineCores = ((machine.busy - machine0.busy) / Math.max(1, machine.total - machine0.total)) * cores;
    const metrics: PhaseMetrics = {
      phase: name,
      seconds: round(seconds, 2),
      nodeCores: round(nodeCores, 2),
      postgresCores: round(postgresCores, 2),
      redisCores: round(redisCores, 2),
      machineCores: round(machineCores, 2),
      otherCores: round(Math.max(0, machineCores - nodeCores - postgresCores - redisCores), 2),
      eventLoop: round(elu.utilization, 2),
      pgCommits: (await pgCommits(monitor)) - commits0,
      peakRssMb: mb(peaks.rss),
      peakRedisMb: mb(peaks.redis),
      peakJobs: peaks.jobs,
    };
    untrack();
    return metrics;
  };
}

interface QueryStat {
  phase: string;
  query: string;
  count: number;
  totalMs: number;
}

type QueryStats = Map<string, QueryStat>;

/** A Prisma client that reports every query's duration to `onQuery`. */
function createLoggedPrisma(max: number, onQuery: (query: string, ms: number) => void): PrismaClient {
  const client = new PrismaClient({ adapter: new PrismaPg({ connectionString: DB_URL, max }), log: [{ emit: "event", level: "query" }] });
  client.$on("query", (e) => onQuery(e.query, e.duration));
  return client as unknown as PrismaClient;
}

function topQueries(stats: QueryStats, limit: number) {
  const byPhase = new Map<string, QueryStat[]>();
  for (const st of stats.values()) byPhase.set(st.phase, [...(byPhase.get(st.phase) ?? []), st]);
  return [...byPhase].flatMap(([, list]) =>
    list
      .sort((a, b) => b.totalMs - a.totalMs)
      .slice(0, limit)
      .map((q) => ({ phase: q.phase, count: q.count, totalMs: round(q.totalMs), meanMs: round(q.totalMs / q.count, 2), query: q.query })),
  );
}

function printQueryStats(stats: QueryStats) {
  console.log("\nQueries of the engine's Prisma client, by total time per phase (durations as Prisma reports them)");
  console.table(topQueries(stats, 10).filter((q) => /ours 1×N: (staging|analysis)$/.test(q.phase)).map((q) => ({ ...q, query: q.query.slice(0, 90) })));
}

function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

// ---------------------------------------------------------------------------------------------
// Setup

async function freshDatabase(databaseUrl = DB_URL) {
  const url = new URL(databaseUrl);
  const name = url.pathname.slice(1);
  url.pathname = "/postgres";
  const admin = new Client({ connectionString: url.toString() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
  await admin.end();
  await ensureDatabase(databaseUrl);
  await migrate(databaseUrl);
}

async function deleteKeys(redis: Redis, prefix: string): Promise<number> {
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length) deleted += await redis.unlink(...keys);
  } while (cursor !== "0");
  return deleted;
}

// ---------------------------------------------------------------------------------------------
// Checking a batch at the end: status, counters adding up, rows, outbox, history.

interface BatchCheck {
  batch: string;
  ok: boolean;
  status: string;
  counters: string;
  staging: string;
  documents: string;
  tasks: string;
  taskAttempts: number;
  outboxPending: number;
  history: string;
  problems: string[];
}

async function checkBatch(monitor: Pool, label: string, batchId: string, expected: number, expectStatus = "COMPLETED"): Promise<BatchCheck> {
  const problems: string[] = [];
  const { rows: [b] } = await monitor.query<{
    status: string; substate: string | null; run_id: number; total: number; pending: number; running: number;
    succeeded: number; failed: number; cancelled: number; staging_progress: Record<string, number>; last_error: string | null;
  }>("SELECT status, substate, run_id, total, pending, running, succeeded, failed, cancelled, staging_progress, last_error FROM batches WHERE id = $1", [batchId]);
  if (!b) return { batch: label, ok: false, status: "MISSING", counters: "", staging: "", documents: "", tasks: "", taskAttempts: 0, outboxPending: 0, history: "", problems: ["batch row missing"] };
  const docs = await monitor.query<{ s: string | null; n: number }>(
    "SELECT stage_status AS s, count(*)::int AS n FROM documents WHERE batch_id = $1 GROUP BY 1 ORDER BY 1", [batchId]);
  const tasks = await monitor.query<{ s: string; n: number; attempts: number }>(
    "SELECT status AS s, count(*)::int AS n, sum(attempts)::int AS attempts FROM tasks WHERE batch_id = $1 AND run_id = $2 GROUP BY 1 ORDER BY 1", [batchId, b.run_id]);
  const outbox = await monitor.query<{ n: number }>("SELECT count(*)::int AS n FROM effects WHERE batch_id = $1 AND status <> 'done'", [batchId]);
  const history = await monitor.query<{ outcome: string; n: number }>(
    "SELECT outcome, count(*)::int AS n FROM history WHERE batch_id = $1 GROUP BY 1 ORDER BY 1", [batchId]);
  const sp = b.staging_progress;
  const docsOk = docs.rows.find((r) => r.s === "succeeded")?.n ?? 0;
  const taskRows = (s: string) => tasks.rows.find((r) => r.s === s)?.n ?? 0;
  const taskAttempts = tasks.rows.reduce((a, r) => a + r.attempts, 0);
  const started = taskRows("succeeded") + taskRows("failed");
  if (b.status !== expectStatus) problems.push(`status ${b.status}${b.substate ? `.${b.substate}` : ""}${b.last_error ? ` (${b.last_error})` : ""}, expected ${expectStatus}`);
  if (b.total !== expected) problems.push(`total ${b.total} ≠ ${expected} documents`);
  if (b.succeeded + b.failed + b.cancelled + b.pending + b.running !== b.total) problems.push("task counters do not add up to total");
  if (b.pending || b.running) problems.push(`left over: pending ${b.pending}, running ${b.running}`);
  if (expectStatus === "COMPLETED" && (b.succeeded !== expected || b.failed || b.cancelled)) problems.push(`succeeded ${b.succeeded}, failed ${b.failed}, cancelled ${b.cancelled} of ${expected}`);
  if (sp.total !== expected || sp.succeeded !== expected || sp.pending || sp.running || sp.failed || sp.cancelled) problems.push(`staging counters ${JSON.stringify(sp)}`);
  if (docsOk !== expected) problems.push(`${docsOk} document rows staged, ${expected} expected`);
  for (const s of ["succeeded", "failed", "cancelled", "pending", "running"] as const) {
    if (taskRows(s) !== b[s]) problems.push(`${taskRows(s)} task rows ${s} but the batch counts ${b[s]}`);
  }
  // Every accepted TASK_STARTED counts an attempt; a start refused by a pause does not. More means tasks ran twice.
  if (taskAttempts !== started) problems.push(`${taskAttempts} task starts for ${started} tasks that ran`);
  if (outbox.rows[0]!.n) problems.push(`${outbox.rows[0]!.n} outbox effects not dispatched`);
  return {
    batch: label,
    ok: problems.length === 0,
    status: b.status,
    counters: `total ${b.total} = ok ${b.succeeded} + failed ${b.failed} + cancelled ${b.cancelled} + pending ${b.pending} + running ${b.running}`,
    staging: `total ${sp.total} = ok ${sp.succeeded} + failed ${sp.failed} + cancelled ${sp.cancelled} + pending ${sp.pending} + running ${sp.running}`,
    documents: docs.rows.map((r) => `${r.s}:${r.n}`).join(" "),
    tasks: tasks.rows.map((r) => `${r.s}:${r.n}`).join(" "),
    taskAttempts,
    outboxPending: outbox.rows[0]!.n,
    history: history.rows.map((r) => `${r.outcome}:${r.n}`).join(" "),
    problems,
  };
}

// ---------------------------------------------------------------------------------------------

interface Throughput {
  system: "ours" | "raw";
  batches: string;
  documents: number;
  stagingSeconds: number;
  stagingDocsPerSec: number;
  analysisSeconds: number;
  analysisDocsPerSec: number;
  peakRssMb: number;
  peakRedisMb: number;
  peakJobs: number;
  completed: boolean;
}

async function main() {
  const started = new Date();
  const issues: string[] = [];
  console.log(`Tranche bench: N=${N}, ${os.cpus().length} cores, node ${process.version}, prefix ${PREFIX}, settings ${JSON.stringify(SETTINGS)}`);

  await freshDatabase();
  const fake: FakeOpenAI = await startFakeOpenAI({ latencyMs: 0 });
  const env: Record<string, string> = {
    DATABASE_URL: DB_URL,
    REDIS_URL,
    QUEUE_PREFIX: PREFIX,
    LOG_LEVEL: process.env.LOG_LEVEL ?? "error",
    LLM_PROVIDER: "openai",
    OPENAI_BASE_URL: fake.url,
    OPENAI_API_KEY: "bench-key",
    ...Object.fromEntries(Object.entries(SETTINGS).map(([k, v]) => [k, String(v)])),
  };
  const config: Config = loadConfig(env);
  const logger = createLogger(config.LOG_LEVEL);
  let currentPhase = "setup";
  const queryStats: QueryStats | undefined = QUERY_STATS ? new Map() : undefined;
  const prisma = queryStats
    ? createLoggedPrisma(config.DATABASE_POOL_SIZE, (query, ms) => {
        const text = query.replace(/\s+/g, " ").replace(/\$\d+/g, "?").slice(0, 200);
        const key = `${currentPhase}|${text}`;
        const st = queryStats.get(key) ?? { phase: currentPhase, query: text, count: 0, totalMs: 0 };
        st.count += 1;
        st.totalMs += ms;
        queryStats.set(key, st);
      })
    : createPrisma(DB_URL, config.DATABASE_POOL_SIZE);
  /**
   * Statements sent to PostgreSQL by this process, per phase: every pg client's query() is counted
   * (the store's own pool, Prisma's pg adapter, the workers, the raw baseline's pool), except the
   * bench's monitor connections.
   */
  const statements = new Map<string, number>();
  const clientQuery = Client.prototype.query;
  Client.prototype.query = function (this: Client, ...args: unknown[]) {
    if (!monitorClients.has(this)) statements.set(currentPhase, (statements.get(currentPhase) ?? 0) + 1);
    return (clientQuery as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof clientQuery;
  const engine = createEngine({ prisma, databaseUrl: DB_URL, poolSize: config.DATABASE_POOL_SIZE, logger, maxRunningBatches: config.MAX_RUNNING_BATCHES });

  // Statuses as committed (every commit of this process, so no polling and no missed transition).
  const statusOf = new Map<string, string>();
  const listeners = new Set<() => void>();
  let commits = 0;
  engine.onCommit((commit) => {
    commits += 1;
    statusOf.set(commit.batchId, commit.status);
    for (const l of listeners) l();
  });
  /** Resolves with true once every batch has reached `target`, false on a dead end or after WAIT_LIMIT_MS. */
  const reach = (ids: string[], target: string) =>
    new Promise<boolean>((resolve) => {
      const dead = new Set(["FAILED", "FAILED_STAGING", "CANCELLED", "DELETED"]);
      const done = (ok: boolean, why?: string) => {
        listeners.delete(check);
        clearTimeout(timer);
        if (why) issues.push(why);
        resolve(ok);
      };
      const check = () => {
        const statuses = ids.map((id) => statusOf.get(id) ?? "");
        if (statuses.every((s) => s === target)) done(true);
        else if (statuses.some((s) => dead.has(s))) done(false, `a batch ended ${statuses.find((s) => dead.has(s))} while waiting for ${target}`);
      };
      const timer = setTimeout(() => done(false, `timed out after ${WAIT_LIMIT_MS / 1000}s waiting for ${ids.length} batch(es) to reach ${target}: ${ids.map((id) => statusOf.get(id)).join(", ")}`), WAIT_LIMIT_MS);
      listeners.add(check);
      check();
    });

  const background = await startBackground({ prisma, engine, config, logger, runWorkers: true });
  const app = createApp({ ...engine, config, logger, bodyLimit: config.BODY_LIMIT });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;

  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const monitor = new Pool({ connectionString: DB_URL, max: 3 });
  monitor.on("connect", (client) => monitorClients.add(client));
  const sampler = createSampler(redis);
  const redisAtStartMb = mb(Number(/used_memory:(\d+)/.exec(await redis.info("memory"))?.[1] ?? 0));
  sampler.watch(...background.queues.all);
  const phases: PhaseMetrics[] = [];
  const checks: BatchCheck[] = [];
  const throughput: Throughput[] = [];
  const phase = async <T>(name: string, work: () => Promise<T>): Promise<{ value: T; metrics: PhaseMetrics }> => {
    const stop = await startPhase(name, sampler, monitor);
    currentPhase = name;
    const value = await work();
    currentPhase = "between phases";
    const metrics = await stop();
    phases.push(metrics);
    console.log(`  ${name}: ${metrics.seconds}s`);
    return { value, metrics };
  };

  const createBatch = (name: string, count: number) =>
    engine.service.createBatch({
      name,
      analysis: ANALYSIS,
      priority: 0,
      window: config.DISPATCH_WINDOW,
      stagingTolerance: 0,
      failureTolerance: 0,
      documents: documents(count, name),
    });

  // Warm up what the first document would otherwise pay for (tokenizer tables, parsers, the SDK).
  chunkText(await extractText(Buffer.from(documentText(0)), "text/plain", "warm.txt"), { maxTokens: config.CHUNK_MAX_TOKENS, overlapTokens: config.CHUNK_OVERLAP_TOKENS });

  let rawReport: Awaited<ReturnType<typeof runRaw>> | undefined;
  let control: Awaited<ReturnType<typeof runControl>> | undefined;
  let ours1: { commitsStaging: number; commitsAnalysis: number; providerRequests: number; history: unknown[] } | undefined;
  let ratio: { staging: number; analysis: number } | undefined;
  const sqlPerEvent: { system: string; phase: string; events: number; statements: number; transactions: number }[] = [];
  const processRuns: ProcessRun[] = [];
  const per = Math.floor(N / BATCHES);
  try {
    // ---- 1. ours, one batch of N ------------------------------------------------------------
    if (SCENARIOS.has("ours1")) {
      console.log(`ours: 1 batch of ${N}`);
      const single = (await phase("ours 1×N: insert", () => createBatch("single", N))).value;
      const fakeBefore = fake.requests.length;
      const commits0 = commits;
      const s1 = await phase("ours 1×N: staging", async () => {
        await engine.service.requestStateChange(single, "stage");
        return reach([single], "STAGED");
      });
      const commits1 = commits;
      const a1 = await phase("ours 1×N: analysis", async () => {
        await engine.service.requestStateChange(single, "run");
        return reach([single], "COMPLETED");
      });
      const history = await monitor.query<{ event_type: string; outcome: string; n: number }>(
        "SELECT event_type, outcome, count(*)::int AS n FROM history WHERE batch_id = $1 GROUP BY 1, 2 ORDER BY 1, 2", [single]);
      const events = (types: string[]) => history.rows.filter((r) => r.outcome === "accepted" && types.includes(r.event_type)).reduce((n, r) => n + r.n, 0);
      const stagingEvents = events(["DOCUMENT_STAGED", "DOCUMENT_STAGE_FAILED"]);
      const analysisEvents = events(["TASK_STARTED", "TASK_COMPLETED", "TASK_FAILED"]);
      sqlPerEvent.push(
        { system: "ours", phase: "staging", events: stagingEvents, statements: statements.get("ours 1×N: staging") ?? 0, transactions: s1.metrics.pgCommits },
        { system: "ours", phase: "analysis", events: analysisEvents, statements: statements.get("ours 1×N: analysis") ?? 0, transactions: a1.metrics.pgCommits },
      );
      ours1 = { commitsStaging: commits1 - commits0, commitsAnalysis: commits - commits1, providerRequests: fake.requests.length - fakeBefore, history: history.rows };
      if (ours1.providerRequests !== N) issues.push(`ours 1×N: ${ours1.providerRequests} provider requests for ${N} tasks`);
      checks.push(await checkBatch(monitor, "ours 1×N", single, N));
      throughput.push(row("ours", `1×${N}`, N, s1.metrics, a1.metrics, s1.value && a1.value));
    }

    // ---- 2. raw baseline ---------------------------------------------------------------------
    if (SCENARIOS.has("raw")) {
      console.log(`raw: plain BullMQ + pg, ${N} documents`);
      const rawBatch = (await phase("raw 1×N: insert", () => createBatch("raw", N))).value;
      rawReport = await runRaw({ config, monitor, phase, batchId: rawBatch, fake, watch: sampler.watch });
      // The baseline's events are its jobs: one per document staged, one per task analysed.
      sqlPerEvent.push(
        { system: "raw", phase: "staging", events: N, statements: statements.get("raw 1×N: staging") ?? 0, transactions: rawReport.staging.pgCommits },
        { system: "raw", phase: "analysis", events: N, statements: statements.get("raw 1×N: analysis") ?? 0, transactions: rawReport.analysis.pgCommits },
      );
      throughput.push(row("raw", `1×${N}`, N, rawReport.staging, rawReport.analysis, rawReport.complete));
      if (!rawReport.complete) issues.push(`raw baseline incomplete: ${JSON.stringify(rawReport.counts)}`);
    }

    // ---- 3. ours, 8 batches at once ------------------------------------------------------------
    if (SCENARIOS.has("ours8")) {
      console.log(`ours: ${BATCHES} batches of ${per} at once`);
      const many = (await phase(`ours ${BATCHES}×N/${BATCHES}: insert`, () => Promise.all(Array.from({ length: BATCHES }, (_, i) => createBatch(`multi${i}`, per))))).value;
      const s8 = await phase(`ours ${BATCHES}×N/${BATCHES}: staging`, async () => {
        await Promise.all(many.map((id) => engine.service.requestStateChange(id, "stage")));
        return reach(many, "STAGED");
      });
      const a8 = await phase(`ours ${BATCHES}×N/${BATCHES}: analysis`, async () => {
        await Promise.all(many.map((id) => engine.service.requestStateChange(id, "run")));
        return reach(many, "COMPLETED");
      });
      for (const [i, id] of many.entries()) checks.push(await checkBatch(monitor, `ours ${BATCHES}×N/${BATCHES} #${i}`, id, per));
      throughput.push(row("ours", `${BATCHES}×${per}`, per * BATCHES, s8.metrics, a8.metrics, s8.value && a8.value));
    }

    // ---- 4. control latency while a batch of N is analysed --------------------------------------
    if (SCENARIOS.has("control")) {
      console.log(`control: pause/resume pairs over HTTP for the whole analysis of a batch of ${N}`);
      control = await runControl({ createBatch, engine, reach, phase, api, fake, monitor, queues: background.queues });
      const stale = control.report.staleDispatchedAfterResume;
      // A latency figure, not a correctness problem: the reconciler gives such tasks a job within RECONCILE_INTERVAL_MS.
      if (stale?.withoutLiveJob) {
        console.log(`control: ${SPACING_MS} ms after a resume, up to ${stale.withoutLiveJob} of ${stale.dispatched} dispatched tasks had no live BullMQ job (${JSON.stringify(stale.jobStates)})`);
      }
      if (control.report.notAskedOnce.length) issues.push(`control: tasks not sent to the provider exactly once: ${control.report.notAskedOnce.slice(0, 10).join(", ")}`);
      else if (!control.ok) issues.push(`control batch did not complete in time${control.report.refused.length ? `: ${control.report.refused.join(", ")}` : ""}`);
      checks.push(await checkBatch(monitor, "control (paused/resumed, completed)", control.batchId, N, control.expectStatus));
    }

    // ---- 5. real processes, driven over HTTP ----------------------------------------------------------
    for (const [scenario, layout] of [["procs1", LAYOUTS.allInOne!], ["procs5", LAYOUTS.split!]] as const) {
      if (!SCENARIOS.has(scenario)) continue;
      console.log(`processes: ${layout.label}, 1 batch of ${N} over HTTP`);
      const port = (server.address() as AddressInfo).port + 1 + processRuns.length;
      // A database and queue prefix of their own: this process's relay and workers must not serve them.
      const databaseUrl = `${DB_URL}_procs`;
      const prefix = `${PREFIX}p${processRuns.length}`;
      await freshDatabase(databaseUrl);
      const childEnv = { ...env, DATABASE_URL: databaseUrl, QUEUE_PREFIX: prefix, LOG_LEVEL: "error" };
      const result = await runLayout(scenario, layout, { env: childEnv, documents: httpDocuments, analysis: ANALYSIS, count: N, waitLimitMs: WAIT_LIMIT_MS }, port).finally(() =>
        deleteKeys(redis, prefix),
      );
      processRuns.push(result);
      if (result.status !== "COMPLETED") issues.push(`${layout.label}: the batch ended ${result.status}, expected COMPLETED`);
    }

    // ---- report ----------------------------------------------------------------------------------
    const ours = throughput.find((t) => t.system === "ours" && t.batches === `1×${N}`);
    const raw = throughput.find((t) => t.system === "raw");
    if (ours && raw) {
      ratio = { staging: round(ours.stagingDocsPerSec / raw.stagingDocsPerSec, 2), analysis: round(ours.analysisDocsPerSec / raw.analysisDocsPerSec, 2) };
    }
    for (const c of checks) if (!c.ok) issues.push(`${c.batch}: ${c.problems.join("; ")}`);

    console.log("\nThroughput (documents/s; staging = stage → STAGED, analysis = run → COMPLETED)");
    console.table(throughput);
    if (ratio) console.log(`ours/raw (1×${N}): staging ${ratio.staging}, analysis ${ratio.analysis}`);
    if (processRuns.length) {
      console.log("\nTranche in real processes, over HTTP (RSS in MB from /proc/<pid>/status: peak of each process)");
      console.table(processRuns.map(({ peakRssMb, ...r }) => ({ ...r, peakRssMb: Object.entries(peakRssMb).map(([k, v]) => `${k} ${v}`).join(", ") })));
    }
    if (sqlPerEvent.length) {
      console.log("\nSQL per document event (statements: counted at the client; transactions: pg_stat_database.xact_commit)");
      console.table(sqlPerEvent.map((r) => ({ ...r, statementsPerEvent: round(r.statements / Math.max(1, r.events), 2), transactionsPerEvent: round(r.transactions / Math.max(1, r.events), 2) })));
    }
    if (control) {
      console.log(`\nControl latency over HTTP while analysing a batch of ${N} (ms; ${control.report.refused.length ? control.report.refused.join(", ") : "every request accepted"})`);
      console.table(control.table);
    }
    console.log("\nWhere the time goes (…Cores = CPU seconds per second; postgres = backends of the bench database; other = rest of the machine)");
    console.table(phases.map((p) => ({ ...p })));
    if (ours1) {
      console.log(`ours 1×N: ${ours1.commitsStaging} store transactions while staging (${round(N / Math.max(1, ours1.commitsStaging), 1)} docs each), ` +
        `${ours1.commitsAnalysis} while analysing (${round(N / Math.max(1, ours1.commitsAnalysis), 1)} docs each); ${ours1.providerRequests} provider requests; history:`);
      console.table(ours1.history);
    }
    if (queryStats) printQueryStats(queryStats);
    console.log("\nFinal batch rows");
    console.table(checks.map(({ problems, ...c }) => ({ ...c, problems: problems.join("; ") })));
    console.log(`peak RSS ${mb(sampler.overall.rss)} MB, peak Redis used_memory ${mb(sampler.overall.redis)} MB (whole Redis server; ${redisAtStartMb} MB at start)`);
    console.log(issues.length ? `\nPROBLEMS:\n  ${issues.join("\n  ")}` : "\nno correctness problems found");

    mkdirSync(path.join(__dirname, "reports"), { recursive: true });
    const file = path.join(__dirname, "reports", `${started.toISOString().replace(/[:.]/g, "-")}.json`);
    writeFileSync(
      file,
      JSON.stringify(
        {
          startedAt: started.toISOString(),
          documents: N,
          scenarios: [...SCENARIOS],
          machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, memoryMb: mb(os.totalmem()) },
          settings: { ...SETTINGS, CHUNK_MAX_TOKENS: config.CHUNK_MAX_TOKENS, fakeLatencyMs: 0, batches: BATCHES, perBatch: per },
          throughput,
          ratioOursToRaw: ratio,
          processes: processRuns,
          sqlPerEvent: sqlPerEvent.map((r) => ({ ...r, statementsPerEvent: round(r.statements / Math.max(1, r.events), 2), transactionsPerEvent: round(r.transactions / Math.max(1, r.events), 2) })),
          control: control?.report,
          phases,
          ours1xN: ours1,
          rawProviderRequests: rawReport?.providerRequests,
          queryStats: queryStats && topQueries(queryStats, 20),
          checks,
          peaks: { rssMb: mb(sampler.overall.rss), redisMb: mb(sampler.overall.redis), redisAtStartMb, jobs: sampler.overall.jobs },
          issues,
        },
        (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value),
        2,
      ),
    );
    console.log(`report written to ${path.relative(process.cwd(), file)}`);
  } finally {
    sampler.stop();
    await rawReport?.close();
    await background.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const deleted = await deleteKeys(redis, PREFIX);
    console.log(`deleted ${deleted} Redis keys under ${PREFIX}:`);
    await redis.quit();
    await fake.close();
    await monitor.end();
    await prisma.$disconnect();
  }
  if (issues.length) process.exitCode = 1;
  // Everything is closed; if a handle still keeps the process alive, say which and leave anyway.
  setTimeout(() => {
    console.error("still open after close:", process.getActiveResourcesInfo());
    process.exit(process.exitCode ?? 0);
  }, 5000).unref();
}

function row(system: "ours" | "raw", batches: string, documents: number, staging: PhaseMetrics, analysis: PhaseMetrics, completed: boolean): Throughput {
  return {
    system,
    batches,
    documents,
    stagingSeconds: staging.seconds,
    stagingDocsPerSec: round(documents / staging.seconds),
    analysisSeconds: analysis.seconds,
    analysisDocsPerSec: round(documents / analysis.seconds),
    peakRssMb: Math.max(staging.peakRssMb, analysis.peakRssMb),
    peakRedisMb: Math.max(staging.peakRedisMb, analysis.peakRedisMb),
    peakJobs: Math.max(staging.peakJobs, analysis.peakJobs),
    completed,
  };
}

type PhaseFn = <T>(name: string, work: () => Promise<T>) => Promise<{ value: T; metrics: PhaseMetrics }>;

// ---------------------------------------------------------------------------------------------
// The raw baseline: the same work with plain BullMQ and plain SQL, no state machine, no window.

interface RawDeps {
  config: Config;
  watch(...queues: Queue[]): () => void;
  monitor: Pool;
  phase: PhaseFn;
  batchId: string;
  fake: FakeOpenAI;
}

async function runRaw({ config, monitor, phase, batchId, fake, watch }: RawDeps) {
  const connection = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const pool = new Pool({ connectionString: config.DATABASE_URL, max: config.DATABASE_POOL_SIZE });

  const stagingQueue = new Queue<{ documentId: string }>("raw-staging", { connection, prefix: PREFIX, defaultJobOptions });
  const analysisQueue = new Queue<{ taskId: string }>("raw-analysis", { connection, prefix: PREFIX, defaultJobOptions });
  const unwatch = watch(stagingQueue as Queue, analysisQueue as Queue);
  const provider = selectProvider(config, { limiter: createRateLimiter({ redis: connection, prefix: `${PREFIX}:raw-limit` }) });
  const chunking = { maxTokens: config.CHUNK_MAX_TOKENS, overlapTokens: config.CHUNK_OVERLAP_TOKENS };
  const common = { connection, prefix: PREFIX, lockDuration: config.JOB_LOCK_MS, stalledInterval: Math.max(500, Math.floor(config.JOB_LOCK_MS / 2)) };
  const workers: Worker[] = [];

  /** Counts finished jobs; resolves once `total` jobs succeeded or failed for good. */
  const tally = (worker: Worker, total: number) => {
    let ok = 0;
    let failed = 0;
    return {
      counts: () => ({ ok, failed }),
      done: new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), WAIT_LIMIT_MS);
        const settle = () => {
          if (ok + failed >= total) {
            clearTimeout(timer);
            resolve(failed === 0);
          }
        };
        worker.on("completed", () => {
          ok += 1;
          settle();
        });
        worker.on("failed", (job: Job | undefined) => {
          if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) failed += 1;
          settle();
        });
      }),
    };
  };

  const addAll = async <T>(queue: Queue<T>, name: string, items: T[], jobId: (t: T) => string) => {
    for (let i = 0; i < items.length; i += 1000) {
      await queue.addBulk(items.slice(i, i + 1000).map((data) => ({ name, data, opts: { jobId: jobId(data) } })) as never);
    }
  };

  const { rows: docs } = await monitor.query<{ id: string }>("SELECT id::text FROM documents WHERE batch_id = $1 ORDER BY position", [batchId]);

  // Staging: one job per document, extract + chunk, one UPDATE.
  const stagingWorker = new Worker<{ documentId: string }>(
    "raw-staging",
    async (job) => {
      const { rows: [doc] } = await pool.query<{ name: string; mime_type: string; content: Buffer }>(
        "SELECT name, mime_type, content FROM documents WHERE id = $1", [job.data.documentId]);
      if (!doc) return "missing";
      const text = await extractText(doc.content, doc.mime_type, doc.name);
      const chunks = chunkText(text, chunking);
      await pool.query(
        `UPDATE documents SET stage_run_id = 1, stage_status = 'succeeded', stage_error = NULL, text = $2, chunks = $3::jsonb,
           token_count = $4, text_sha256 = $5, updated_at = now() WHERE id = $1`,
        [job.data.documentId, text, JSON.stringify(chunks), chunks.reduce((n, c) => n + c.tokens, 0), createHash("sha256").update(text).digest("hex")],
      );
      return "staged";
    },
    { ...common, concurrency: config.STAGING_CONCURRENCY },
  );
  workers.push(stagingWorker);
  const stagingTally = tally(stagingWorker, docs.length);
  const staging = await phase("raw 1×N: staging", async () => {
    await addAll(stagingQueue, "stage", docs.map((d) => ({ documentId: d.id })), (d) => `raw-stage-${d.documentId}`);
    return stagingTally.done;
  });
  await stagingWorker.close();

  // Analysis: task rows as `run` creates them, one job per task, provider call, one UPDATE with the result.
  const analysisWorker = new Worker<{ taskId: string }>(
    "raw-analysis",
    async (job, _token, signal) => {
      const { rows: [t] } = await pool.query<{ name: string; chunks: { index: number; text: string }[] | null; analysis: typeof ANALYSIS }>(
        `SELECT d.name, d.chunks, b.analysis FROM tasks t JOIN documents d ON d.id = t.document_id JOIN batches b ON b.id = t.batch_id
         WHERE t.id = $1`, [job.data.taskId]);
      if (!t) return "missing";
      const startedAt = performance.now();
      const result = await provider.analyze({
        instructions: t.analysis.instructions,
        outputSchema: t.analysis.output_schema,
        documentName: t.name,
        chunks: (t.chunks ?? []).map((c) => ({ index: c.index, text: c.text })),
        signal,
      });
      await pool.query(
        `UPDATE tasks SET status = 'succeeded', error = NULL, output = $2::jsonb, input_tokens = $3, output_tokens = $4, latency_ms = $5,
           attempts = attempts + 1, finished_at = now(), updated_at = now() WHERE id = $1`,
        [job.data.taskId, JSON.stringify(result.output ?? null), result.inputTokens, result.outputTokens, Math.round(performance.now() - startedAt)],
      );
      return "analysed";
    },
    { ...common, concurrency: config.ANALYSIS_CONCURRENCY },
  );
  workers.push(analysisWorker);
  const analysisTally = tally(analysisWorker, docs.length);
  const fakeBefore = fake.requests.length;
  const analysis = await phase("raw 1×N: analysis", async () => {
    const { rows: tasks } = await pool.query<{ id: string }>(
      `INSERT INTO tasks (id, batch_id, run_id, document_id, position, status, updated_at)
       SELECT $1 || '-r1-' || d.id::text, d.batch_id, 1, d.id, d.position, 'pending', now()
       FROM documents d WHERE d.batch_id = $1::uuid AND d.stage_status = 'succeeded' ORDER BY d.position RETURNING id`, [batchId]);
    await addAll(analysisQueue, "analyse", tasks.map((t) => ({ taskId: t.id })), (t) => `raw-task-${t.taskId}`);
    return analysisTally.done;
  });
  const providerRequests = fake.requests.length - fakeBefore;

  const { rows: [counts] } = await monitor.query<{ staged: number; analysed: number }>(
    `SELECT (SELECT count(*)::int FROM documents WHERE batch_id = $1 AND stage_status = 'succeeded') AS staged,
            (SELECT count(*)::int FROM tasks WHERE batch_id = $1 AND status = 'succeeded') AS analysed`, [batchId]);
  const complete = staging.value && analysis.value && counts?.staged === docs.length && counts.analysed === docs.length;
  return {
    staging: staging.metrics,
    analysis: analysis.metrics,
    complete,
    providerRequests,
    counts: { ...counts, staging: stagingTally.counts(), analysis: analysisTally.counts() },
    async close() {
      unwatch();
      await Promise.all(workers.map((w) => w.close()));
      await stagingQueue.close();
      await analysisQueue.close();
      await connection.quit();
      await pool.end();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Control latency: pause / resume over HTTP while a batch is being analysed.

interface ControlDeps {
  createBatch(name: string, count: number): Promise<string>;
  engine: ReturnType<typeof createEngine>;
  reach(ids: string[], target: string): Promise<boolean>;
  phase: PhaseFn;
  api: string;
  fake: FakeOpenAI;
  monitor: Pool;
  queues: Queues;
}

/** Tasks of the batch's run that the database calls dispatched ('running'), by the state of their BullMQ job. */
async function staleDispatched(monitor: Pool, queues: Queues, batchId: string) {
  const { rows } = await monitor.query<{ id: string; attempts: number; dispatches: number }>(
    "SELECT t.id, t.attempts, t.dispatches FROM tasks t JOIN batches b ON b.id = t.batch_id AND b.run_id = t.run_id WHERE t.batch_id = $1 AND t.status = 'running'", [batchId]);
  const byState: Record<string, number> = {};
  for (const r of rows) {
    const state = await queues.analysis.getJobState(jobIds.analysis({ taskId: r.id, dispatch: r.dispatches }));
    byState[state] = (byState[state] ?? 0) + 1;
  }
  const stuck = rows.length - (byState.active ?? 0) - (byState.waiting ?? 0) - (byState.prioritized ?? 0) - (byState.delayed ?? 0);
  return { dispatched: rows.length, jobStates: byState, withoutLiveJob: stuck };
}

async function runControl({ createBatch, engine, reach, phase, api, fake, monitor, queues }: ControlDeps) {
  const batchId = await createBatch("control", N);
  const staged = await phase("control 1×N: staging", async () => {
    await engine.service.requestStateChange(batchId, "stage");
    return reach([batchId], "STAGED");
  });

  const post = async (action: string) => {
    const t0 = performance.now();
    const res = await fetch(`${api}/batches/${batchId}/${action}`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    const body = (await res.json()) as { current_state?: string; code?: string; batch?: { progress?: { succeeded?: number } } };
    return { ms: performance.now() - t0, status: res.status, state: body.current_state ?? body.code, succeeded: body.batch?.progress?.succeeded ?? -1, at: Date.now() };
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const pauses: number[] = [];
  const resumes: number[] = [];
  /** Requests refused other than by the batch having completed (which ends the loop). */
  const refused: string[] = [];
  /** Tasks succeeded as each pause's answer shows them: the batch keeps going between pairs. */
  const succeededAtPause: number[] = [];
  /** Provider requests that arrived while the batch was paused (from the pause's answer to the resume request). */
  const requestsWhilePaused: number[] = [];
  /** Dispatched tasks without a live BullMQ job, looked at 100 ms after some resumes (every 10th pair). */
  const stale: Awaited<ReturnType<typeof staleDispatched>>[] = [];

  const fakeBefore = fake.requests.length;
  const run = await phase("control 1×N: analysis with pause/resume pairs across the whole run", async () => {
    await engine.service.requestStateChange(batchId, "run");
    // Pairs from the first task to the last: p99 covers the run's end too, where the batch's tables are largest.
    for (let i = 0; ; i++) {
      const pause = await post("pause");
      if (pause.status !== 200) {
        if (pause.state !== "COMPLETED") refused.push(`pause #${i + 1}: ${pause.status} ${pause.state}`);
        break;
      }
      pauses.push(pause.ms);
      succeededAtPause.push(pause.succeeded);
      await sleep(SPACING_MS);
      const resumeSentAt = Date.now();
      // Tasks already past TASK_STARTED may still reach the provider; no task starts after the pause commits.
      requestsWhilePaused.push(fake.requests.filter((r) => r.at >= pause.at && r.at < resumeSentAt).length);
      const resume = await post("resume");
      if (resume.status !== 200) {
        if (resume.state !== "COMPLETED") refused.push(`resume #${i + 1}: ${resume.status} ${resume.state}`);
        break;
      }
      resumes.push(resume.ms);
      await sleep(SPACING_MS);
      if (i % 10 === 0) stale.push(await staleDispatched(monitor, queues, batchId));
    }
    return reach([batchId], "COMPLETED");
  });
  const stat = (xs: number[]) => ({ n: xs.length, p50: round(percentile(xs, 50), 1), p99: round(percentile(xs, 99), 1), max: round(xs.length ? Math.max(...xs) : NaN, 1) });
  const table = [
    { request: "pause", ...stat(pauses) },
    { request: "resume", ...stat(resumes) },
  ];
  // Each task must reach the provider exactly once, however often the batch was paused around it.
  const perDocument = new Map<string, number>();
  for (const r of fake.requests.slice(fakeBefore)) {
    const name = /Document: (\S+)/.exec(JSON.stringify(r.body.messages ?? []))?.[1] ?? "?";
    perDocument.set(name, (perDocument.get(name) ?? 0) + 1);
  }
  const askedTwice = [...perDocument].filter(([, n]) => n !== 1).map(([name, n]) => `${name} ×${n}`);
  if (perDocument.size !== N) askedTwice.push(`${perDocument.size} documents reached the provider, ${N} expected`);
  const worstStale = stale.reduce((worst, s) => (s.withoutLiveJob > (worst?.withoutLiveJob ?? -1) ? s : worst), stale[0]);
  return {
    batchId,
    table,
    expectStatus: "COMPLETED",
    ok: staged.value && run.value && refused.length === 0 && askedTwice.length === 0,
    report: {
      spacingMs: SPACING_MS,
      pause: stat(pauses),
      resume: stat(resumes),
      refused,
      providerRequests: fake.requests.length - fakeBefore,
      notAskedOnce: askedTwice,
      succeededAtPause,
      providerRequestsWhilePaused: requestsWhilePaused,
      staleDispatchedAfterResume: worstStale,
      stagingSeconds: staged.metrics.seconds,
      analysisSeconds: run.metrics.seconds,
    },
  };
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
