// Pause mid-run with real workers: once the pause is accepted no new provider request starts, tasks already started finish and are counted, and resume completes exactly the rest, each task counted once.
import { act, documentOf, uploadBatch } from "./support/e2e";
import { createSystem, waitFor, waitForStatus, type TestSystem } from "./support/system";

let s: TestSystem;
beforeAll(async () => {
  // No periodic reconcile: resume alone must get every remaining task going.
  s = await createSystem({ fake: { latencyMs: 250 }, env: { RECONCILE_INTERVAL_MS: "600000" } });
});
afterAll(() => s.close());

test("pause, then resume", async () => {
  const id = await uploadBatch(s, { texts: 12 });
  await act(s, id, "stage");
  await waitForStatus(s, id, "STAGED");
  await act(s, id, "run");
  await s.fake.waitForRequests(4);

  const paused = await act(s, id, "pause", { reason: "check the first results" });
  expect(paused.status).toBe(200);
  expect(paused.body.current_state).toBe("PAUSED");
  // Whatever had started finishes; nothing else is in flight once it has.
  const settled = await waitFor("in-flight tasks to finish", async () => {
    const b = await s.db.prisma.batch.findUniqueOrThrow({ where: { id } });
    return b.running === 0 ? b : undefined;
  });
  expect(settled.status).toBe("PAUSED");
  expect(settled.pending).toBeGreaterThan(0);
  await new Promise((r) => setTimeout(r, 1000));
  const requestsWhilePaused = s.fake.requests.length;

  // The gate: every provider request belongs to a start the batch accepted before the pause,
  // and the batch accepted no start after it.
  const history = await s.db.prisma.historyEntry.findMany({ where: { batchId: id }, orderBy: { seq: "asc" } });
  const pauseSeq = history.find((e) => e.eventType === "pause" && e.outcome === "accepted")!.seq;
  const startsBefore = history.filter((e) => e.eventType === "TASK_STARTED" && e.outcome === "accepted" && e.seq < pauseSeq);
  expect(history.some((e) => e.eventType === "TASK_STARTED" && e.outcome === "accepted" && e.seq > pauseSeq)).toBe(false);
  expect(requestsWhilePaused).toBe(startsBefore.length);
  expect(settled.succeeded).toBe(startsBefore.length);

  await act(s, id, "resume");
  const done = await waitForStatus(s, id, "COMPLETED");
  expect(done).toMatchObject({ total: 12, succeeded: 12, failed: 0, cancelled: 0 });
  const asked = s.fake.requests.map((r) => documentOf(r.body));
  expect(asked).toHaveLength(12);
  expect(new Set(asked).size).toBe(12);
  const completions = await s.db.prisma.historyEntry.count({ where: { batchId: id, eventType: "TASK_COMPLETED", outcome: "accepted" } });
  expect(completions).toBe(12);
});
