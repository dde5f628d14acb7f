// The batch lane across crashes: the worker process that submits is SIGKILLed between the upload
// and the create, and again between the create and the record (the provider accepted the provider
// batch, the store never heard of it). Each time a new worker process takes over from what
// PostgreSQL holds: exactly one provider batch carries each task, and each task is counted once.
import type { ChildProcess } from "node:child_process";
import request from "supertest";
import { startFakeBatches, type FakeBatches } from "./support/fake-batches";
import { createSystem, waitFor, waitForStatus, type TestSystem } from "./support/system";

let fake: FakeBatches;
let s: TestSystem;
beforeAll(async () => {
  fake = await startFakeBatches({ processMs: 100 });
  s = await createSystem({
    workers: false,
    env: { OPENAI_BASE_URL: fake.openaiUrl, LANE_POLL_MS: "100", LANE_POLL_MAX_MS: "200" },
  });
});
afterAll(async () => {
  fake.release();
  await s.close();
  await fake.close();
});

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

async function stagedBatch(n: number) {
  // Both tests stage these documents: kept out of the result cache, the second's tasks reach the provider too.
  const documents = Array.from({ length: n }, (_, i) => ({ name: `doc-${i}.txt`, content: `Document ${i}: Grace Hopper found a moth in the relay.` }));
  const res = await request(s.app)
    .post("/api/batches/stage")
    .send({ name: "lane-kill", analysis: { instructions: "Summarise the document.", mode: "batch", model: "gpt-4o-mini", cache: false }, documents })
    .expect(201);
  return res.body.batch.id as string;
}

test.each(["upload", "create"] as const)("killed during the %s: one provider batch per task, each task counted once", async (hold) => {
  const first = s.spawnWorker();
  const id = await stagedBatch(4);
  await waitForStatus(s, id, "STAGED", 60_000);
  fake.setBehaviour({ processMs: 100, hold });
  await request(s.app).post(`/api/batches/${id}/action`).send({ action: "run" }).expect(200);
  await fake.held();
  await kill(first);
  fake.release();
  s.spawnWorker();
  const done = await waitForStatus(s, id, "COMPLETED", 90_000);
  expect(done).toMatchObject({ total: 4, succeeded: 4, failed: 0, cancelled: 0 });
  const mine = fake.batches.filter((b) => b.metadata.tranche_batch === id);
  expect(mine).toHaveLength(1);
  const carried = mine.flatMap((b) => b.lines.map((l) => l.customId));
  expect(new Set(carried).size).toBe(4);
  expect(carried).toHaveLength(4);
  // Lines are reported before their provider batch is recorded as ended: the batch may complete a moment earlier.
  const parts = await waitFor("the provider batch recorded as ended", async () => {
    const rows = await s.db.prisma.providerBatch.findMany({ where: { batchId: id } });
    return rows.every((p) => p.status === "ended") ? rows : undefined;
  });
  expect(parts).toHaveLength(1);
  expect(parts[0]).toMatchObject({ providerId: mine[0]!.id, status: "ended" });
  const history = await s.db.prisma.historyEntry.findMany({ where: { batchId: id, eventType: "TASK_COMPLETED", outcome: "accepted" } });
  expect(history).toHaveLength(4);
});
