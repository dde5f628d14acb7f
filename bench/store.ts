/**
 * Benchmark (not a test): the store alone, one hot batch. Every document is staged and then
 * analysed by reports sent straight to the store, from 1 process and from 4 processes (real
 * child processes, each with its own engine and pool), with many reports in flight each:
 * - `inbox`: reports as workers send them (`deliver`: durable inbox, drained in groups);
 * - `direct`: reports applied synchronously (`report`, grouped in-process while in flight).
 * Measures accepted events per second (until the batch reached STAGED, then COMPLETED) and
 * the SQL statements the store's pools sent per event (BEGIN/COMMIT included).
 *
 *   npm run bench:store -- [documents=2000]
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { Client } from "pg";
import { createPrisma, ensureDatabase, migrate } from "../src/db";
import { createEngine, type Engine } from "../src/engine";
import { createLogger } from "../src/logger";

const BASE = process.env.BENCH_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/tranche_bench_store";
const IN_FLIGHT = 64;

/** Counts every statement sent on any pg connection of this process. */
function countStatements(): () => number {
  let n = 0;
  const proto = Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    n++;
    return original.apply(this, args);
  };
  return () => n;
}

type Mode = "inbox" | "direct";

function engineFor(poolSize: number): Engine {
  return createEngine({ prisma: createPrisma(BASE, 2), databaseUrl: BASE, poolSize, logger: createLogger("silent"), maxRunningBatches: 1000 });
}

/** Sends this process's share of one phase's reports, `IN_FLIGHT` at a time. */
async function send(engine: Engine, mode: Mode, reports: Parameters<Engine["service"]["report"]>[0][]) {
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < reports.length) {
        const r = reports[next++]!;
        if (mode === "inbox") await engine.service.deliver(r);
        else await engine.service.report(r);
      }
    }),
  );
}

async function unitIds(engine: Engine, batchId: string, phase: "staging" | "analysis", slot: number, of: number) {
  const rows =
    phase === "staging"
      ? await engine.store.pool.query<{ id: string }>(`SELECT id::text FROM documents WHERE batch_id = $1 ORDER BY position`, [batchId])
      : await engine.store.pool.query<{ id: string }>(`SELECT id FROM tasks WHERE batch_id = $1 ORDER BY position`, [batchId]);
  return rows.rows.map((r) => r.id).filter((_, i) => i % of === slot);
}

function reportsFor(batchId: string, phase: "staging" | "analysis", ids: string[]) {
  return ids.map((id) =>
    phase === "staging"
      ? { type: "DOCUMENT_STAGED" as const, batchId, runId: 1, documentId: id, text: "doc", chunks: [], tokenCount: 1, textSha256: "0".repeat(64) }
      : { type: "TASK_COMPLETED" as const, batchId, runId: 1, taskId: id, output: { ok: true }, inputTokens: 1, outputTokens: 1 },
  );
}

/** A child process: waits for `go <phase>` lines, sends its share, answers `done <statements>`. */
async function child(batchId: string, mode: Mode, slot: number, of: number) {
  const statements = countStatements();
  const engine = engineFor(8);
  const lines = createInterface({ input: process.stdin });
  process.stdout.write("ready\n");
  for await (const line of lines) {
    const [verb, phase] = line.split(" ");
    if (verb === "quit") break;
    const before = statements();
    const reports = reportsFor(batchId, phase as "staging" | "analysis", await unitIds(engine, batchId, phase as "staging" | "analysis", slot, of));
    const counted = statements() - before;
    await send(engine, mode, reports);
    await engine.store.inbox.close();
    process.stdout.write(`done ${statements() - before - counted}\n`);
  }
  await engine.close();
  process.exit(0);
}

async function freshDatabase() {
  const url = new URL(BASE);
  const name = url.pathname.slice(1);
  url.pathname = "/postgres";
  const admin = new Client({ connectionString: url.toString() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.end();
  await ensureDatabase(BASE);
  await migrate(BASE);
}

async function waitForStatus(engine: Engine, batchId: string, status: string) {
  for (;;) {
    const { rows } = await engine.store.pool.query<{ status: string }>(`SELECT status FROM batches WHERE id = $1`, [batchId]);
    if (rows[0]?.status === status) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function scenario(N: number, processes: number, mode: Mode) {
  const label = `${processes} process${processes > 1 ? "es" : ""}, ${mode}`;
  const main = engineFor(8);
  const batchId = await main.service.createBatch({
    name: label, analysis: { instructions: "bench" }, priority: 0, window: N, stagingTolerance: 0, failureTolerance: 0,
    documents: Array.from({ length: N }, (_, i) => ({ name: `d${i}.txt`, mimeType: "text/plain", content: Buffer.from(`doc ${i}`) })),
  });
  await main.service.requestStateChange(batchId, "stage");

  const senders = await Promise.all(Array.from({ length: processes }, (_, slot) => startChild(batchId, mode, slot, processes)));
  const phase = async (name: "staging" | "analysis", until: string) => {
    const started = performance.now();
    const counts = await Promise.all(senders.map((s) => s.run(name)));
    await waitForStatus(main, batchId, until);
    const seconds = (performance.now() - started) / 1000;
    return { eventsPerSec: Math.round(N / seconds), statementsPerEvent: counts.reduce((a, b) => a + b, 0) / N };
  };
  const staging = await phase("staging", "STAGED");
  await main.service.requestStateChange(batchId, "run");
  const analysis = await phase("analysis", "COMPLETED");
  await Promise.all(senders.map((s) => s.quit()));
  const { rows } = await main.store.pool.query<{ succeeded: number }>(`SELECT succeeded FROM batches WHERE id = $1`, [batchId]);
  if (rows[0]?.succeeded !== N) throw new Error(`${label}: ${rows[0]?.succeeded}/${N} succeeded`);
  await main.close();
  return {
    scenario: label,
    stagingEventsPerSec: staging.eventsPerSec,
    analysisEventsPerSec: analysis.eventsPerSec,
    stagingStatementsPerEvent: Number(staging.statementsPerEvent.toFixed(2)),
    analysisStatementsPerEvent: Number(analysis.statementsPerEvent.toFixed(2)),
  };
}

/** Starts one sender process and returns its controls. */
async function startChild(batchId: string, mode: Mode, slot: number, of: number) {
  const proc = spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "store.ts"), "--child", batchId, mode, String(slot), String(of)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: proc.stdout! });
  const queue: ((line: string) => void)[] = [];
  lines.on("line", (line) => queue.shift()?.(line));
  const next = () => new Promise<string>((resolve) => queue.push(resolve));
  await next();
  return {
    async run(phase: string) {
      const answer = next();
      proc.stdin!.write(`go ${phase}\n`);
      return Number((await answer).split(" ")[1]);
    },
    async quit() {
      const exited = new Promise((resolve) => proc.once("exit", resolve));
      proc.stdin!.write("quit\n");
      await exited;
    },
  };
}

async function main() {
  const N = Number(process.argv[2] ?? 2000);
  await freshDatabase();
  const rows = [];
  for (const [processes, mode] of [[1, "inbox"], [4, "inbox"], [1, "direct"], [4, "direct"]] as const) rows.push(await scenario(N, processes, mode));
  console.table(rows);
  mkdirSync("bench/reports", { recursive: true });
  const file = `bench/reports/store-${new Date().toISOString().replace(/[:.]/g, "-")}.json`;
  writeFileSync(file, JSON.stringify({ documents: N, inFlightPerProcess: IN_FLIGHT, rows }, null, 2));
  console.log(`report written to ${file}`);
  process.exit(0);
}

const args = process.argv.slice(2);
const run = args[0] === "--child" ? child(args[1]!, args[2] as Mode, Number(args[3]), Number(args[4])) : main();
run.catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
