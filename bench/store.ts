/**
 * Benchmark (not a test): accepted events per second through the actor store for one hot
 * batch — one client sending one report at a time, and 10 clients (10 PrismaClients, as 10
 * processes would be) each keeping several reports in flight, so group commit can work.
 *
 *   npm run bench:store -- [documents=2000]
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { Client } from "pg";
import { createPrisma, ensureDatabase, migrate } from "../src/db";
import { createEngine, type Engine } from "../src/engine";
import { createLogger } from "../src/logger";

const N = Number(process.argv[2] ?? 2000);
const BASE = process.env.BENCH_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/tranche_bench";

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

async function scenario(label: string, clients: number, inFlightPerClient: number) {
  const logger = createLogger("silent");
  const engines: Engine[] = Array.from({ length: clients }, () =>
    createEngine({ prisma: createPrisma(BASE, 2), databaseUrl: BASE, poolSize: Math.max(2, inFlightPerClient), logger, maxRunningBatches: 1000 }),
  );
  const first = engines[0]!;
  const batchId = await first.service.createBatch({
    name: label, analysis: { instructions: "bench" }, priority: 0, window: N, stagingTolerance: 0, failureTolerance: 0,
    documents: Array.from({ length: N }, (_, i) => ({ name: `d${i}.txt`, mimeType: "text/plain", content: Buffer.from(`doc ${i}`) })),
  });
  await first.service.requestStateChange(batchId, "stage");
  const prisma = createPrisma(BASE, 2);
  const docs = await prisma.document.findMany({ where: { batchId }, select: { id: true } });

  const drive = async (reports: ((e: Engine) => Promise<unknown>)[]) => {
    let next = 0;
    const started = performance.now();
    await Promise.all(engines.flatMap((engine) => Array.from({ length: inFlightPerClient }, async () => {
      while (next < reports.length) await reports[next++]!(engine);
    })));
    return reports.length / ((performance.now() - started) / 1000);
  };

  const staging = await drive(docs.map((d) => (e: Engine) => e.service.report({
    type: "DOCUMENT_STAGED", batchId, runId: 1, documentId: d.id, text: "doc", chunks: [], tokenCount: 1, textSha256: "0".repeat(64),
  })));
  await first.service.requestStateChange(batchId, "run");
  const tasks = await prisma.task.findMany({ where: { batchId }, select: { id: true } });
  const analysis = await drive(tasks.map((t) => (e: Engine) => e.service.report({
    type: "TASK_COMPLETED", batchId, runId: 1, taskId: t.id, output: { ok: true }, inputTokens: 1, outputTokens: 1,
  })));
  const batch = await prisma.batch.findUniqueOrThrow({ where: { id: batchId } });
  if (batch.status !== "COMPLETED" || batch.succeeded !== N) throw new Error(`${label}: batch ended ${batch.status} with ${batch.succeeded}/${N}`);
  await prisma.$disconnect();
  return { label, clients, inFlightPerClient, events: 2 * N, stagingEventsPerSec: Math.round(staging), analysisEventsPerSec: Math.round(analysis) };
}

async function main() {
  await freshDatabase();
  const rows = [
    await scenario("1 client, 1 at a time", 1, 1),
    await scenario("1 client, 32 in flight", 1, 32),
    await scenario("10 clients, 1 at a time each", 10, 1),
    await scenario("10 clients, 8 in flight each", 10, 8),
  ];
  console.table(rows);
  mkdirSync("bench/reports", { recursive: true });
  const file = `bench/reports/store-${new Date().toISOString().replace(/[:.]/g, "-")}.json`;
  writeFileSync(file, JSON.stringify({ documents: N, rows }, null, 2));
  console.log(`report written to ${file}`);
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
