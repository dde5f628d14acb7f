// The batch queue with real workers and MAX_RUNNING_BATCHES=1: a second batch waits at position 1 and runs by itself when the first completes.
import request from "supertest";
import { act, uploadBatch } from "./support/e2e";
import { createSystem, waitFor, waitForStatus, type TestSystem } from "./support/system";

let s: TestSystem;
beforeAll(async () => {
  s = await createSystem({ maxRunningBatches: 1, fake: { latencyMs: 100 } });
});
afterAll(() => s.close());

test("two batches, one slot", async () => {
  const a = await uploadBatch(s, { name: "first", texts: 6 });
  const b = await uploadBatch(s, { name: "second", texts: 3 });
  for (const id of [a, b]) {
    await act(s, id, "stage");
    await waitForStatus(s, id, "STAGED");
  }
  await act(s, a, "run");
  const queued = await act(s, b, "run");
  expect(queued.body.batch).toMatchObject({ status: "ANALYZING", substate: "queued", queue_position: 1 });
  const queue = (await request(s.app).get("/api/queue").expect(200)).body;
  expect(queue.running.map((x: { id: string }) => x.id)).toEqual([a]);

  // While the first runs, no task of the second starts.
  await waitFor("the first batch's tasks to start", async () => s.fake.requests.length >= 2);
  expect((await s.db.prisma.batch.findUniqueOrThrow({ where: { id: b } })).running).toBe(0);

  await waitForStatus(s, a, "COMPLETED");
  const done = await waitForStatus(s, b, "COMPLETED");
  expect(done.succeeded).toBe(3);
  const started = await s.db.prisma.historyEntry.findFirstOrThrow({ where: { batchId: b, eventType: "START" } });
  const aDone = await s.db.prisma.historyEntry.findFirstOrThrow({ where: { batchId: a, toState: "COMPLETED" } });
  expect(started.createdAt.getTime()).toBeGreaterThanOrEqual(aDone.createdAt.getTime());
});
