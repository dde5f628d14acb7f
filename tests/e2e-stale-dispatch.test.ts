// A job of an earlier dispatch never starts a task again. Pause and resume with jobs in flight: a task handed back by
// its first job (withdrawn, or its start refused by the pause) goes out again as a second dispatch, and the first job's
// handback may reach the batch only after that. It must not release the second dispatch (which would put a third job
// beside a live second one), and a first-dispatch job must not be allowed to start: each task reaches the provider once.
import { act, documentOf, uploadBatch } from "./support/e2e";
import { createSystem, waitFor, waitForStatus, type TestSystem } from "./support/system";

let s: TestSystem;
beforeAll(async () => {
  // Slow answers and few workers, so that the pause finds jobs waiting and the resumed ones are still in flight
  // when the late handback arrives; no periodic reconcile to mend anything behind the test's back.
  s = await createSystem({
    fake: { latencyMs: 800 },
    env: { RECONCILE_INTERVAL_MS: "600000", ANALYSIS_CONCURRENCY: "2", DISPATCH_WINDOW: "8" },
  });
});
afterAll(() => s.close());

test("a late handback of an earlier dispatch neither releases the current one nor lets its job start", async () => {
  const total = 8;
  const id = await uploadBatch(s, { texts: total });
  await act(s, id, "stage");
  await waitForStatus(s, id, "STAGED");
  await act(s, id, "run");
  await s.fake.waitForRequests(2);

  expect((await act(s, id, "pause")).status).toBe(200);
  await waitFor("the pause to take back the waiting jobs and the started ones to finish", async () => {
    const b = await s.db.prisma.batch.findUniqueOrThrow({ where: { id } });
    return b.running === 0 && b.pending > 0;
  });
  // Dispatched once, then handed back (the rest of the pending tasks were never dispatched).
  const handedBack = await s.db.prisma.task.findMany({ where: { batchId: id, status: "pending", dispatches: 1 }, select: { id: true } });
  expect(handedBack.length).toBeGreaterThan(0);

  expect((await act(s, id, "resume")).status).toBe(200);
  await waitFor("the handed-back tasks to go out again", async () => {
    const again = await s.db.prisma.task.count({ where: { id: { in: handedBack.map((t) => t.id) }, dispatches: 2 } });
    return again === handedBack.length;
  });
  // The first dispatch's handback, late: what a withdrawer or a refused job reports for dispatch 1.
  await s.engine.service.deliver({
    type: "JOBS_WITHDRAWN", batchId: id, runId: 1, kind: "analysis",
    ids: handedBack.map((t) => t.id), dispatches: handedBack.map(() => 1),
  });
  // A first-dispatch job asking to start after the task went out again.
  const stale = await s.engine.service.report({ type: "TASK_STARTED", batchId: id, runId: 1, taskId: handedBack[0]!.id, dispatch: 1 });
  expect(stale).toMatchObject({ outcome: "ignored", code: "stale_dispatch" });

  const done = await waitForStatus(s, id, "COMPLETED");
  expect(done).toMatchObject({ total, succeeded: total, failed: 0, cancelled: 0 });
  const perDocument = new Map<string, number>();
  for (const r of s.fake.requests) perDocument.set(documentOf(r.body), (perDocument.get(documentOf(r.body)) ?? 0) + 1);
  expect(perDocument.size).toBe(total);
  expect([...perDocument.values()]).toEqual(Array(total).fill(1));
  const tasks = await s.db.prisma.task.findMany({ where: { batchId: id }, select: { attempts: true, dispatches: true } });
  expect(tasks.map((t) => t.attempts)).toEqual(Array(total).fill(1));
  // The late handback released nothing: no task needed a third dispatch.
  expect(Math.max(...tasks.map((t) => t.dispatches))).toBe(2);
  const late = await s.db.prisma.historyEntry.findMany({ where: { batchId: id, eventType: "JOBS_WITHDRAWN", reason: "every named job is of an earlier dispatch" } });
  expect(late.map((e) => e.outcome)).toEqual(["ignored"]);
});
