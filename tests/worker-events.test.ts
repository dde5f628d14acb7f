// Worker reports through the worker-facing entry points: a duplicate report counts once, a report of an older run is ignored and recorded as ignored, and stored rows always agree with the counters.
import { batchIn, finishTasks, runningTasks, stageAll } from "./support/drive";
import { createHarness, type Harness } from "./support/harness";

let h: Harness;
beforeAll(async () => {
  h = await createHarness({ maxRunningBatches: 100 });
});
afterAll(() => h.close());

const d = () => ({ service: h.engine.service, prisma: h.db.prisma });

test("the same task reported twice is counted once", async () => {
  const id = await batchIn(d(), "ANALYZING.running");
  const [task] = await runningTasks(h.db.prisma, id);
  const report = { type: "TASK_COMPLETED" as const, batchId: id, runId: 1, taskId: task!.id, output: { n: 1 }, inputTokens: 3, outputTokens: 4 };
  const first = await h.engine.service.handleTaskCompletion(report);
  const second = await h.engine.service.handleTaskCompletion({ ...report, output: { n: 2 } });
  expect(first.outcome).toBe("accepted");
  expect(second.outcome).toBe("ignored");
  expect(second.reason).toMatch(/already succeeded/);
  const batch = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(batch.succeeded).toBe(1);
  const stored = await h.db.prisma.task.findUniqueOrThrow({ where: { id: task!.id } });
  expect(stored.output).toEqual({ n: 1 });
  const ignored = await h.db.prisma.historyEntry.findMany({ where: { batchId: id, outcome: "ignored" } });
  expect(ignored).toHaveLength(1);
  expect(ignored[0]?.version).toBe(first.version);
});

test("duplicates sent concurrently, from two service instances, still count once", async () => {
  const id = await batchIn(d(), "ANALYZING.running");
  const tasks = await runningTasks(h.db.prisma, id);
  const other = h.newEngine();
  const reports = tasks.flatMap((t) => [h.engine.service, other.service, h.engine.service].map((s) =>
    s.handleTaskCompletion({ type: "TASK_COMPLETED", batchId: id, runId: 1, taskId: t.id, output: null })));
  const results = await Promise.all(reports);
  expect(results.filter((r) => r.outcome === "accepted")).toHaveLength(tasks.length);
  const batch = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(batch.status).toBe("COMPLETED");
  expect(batch.succeeded).toBe(2);
});

test("a report of an older run is ignored and recorded as ignored", async () => {
  const id = await batchIn(d(), "COMPLETED");
  const oldTask = (await h.db.prisma.task.findMany({ where: { batchId: id } }))[0]!;
  await h.engine.service.requestStateChange(id, "rerun");
  await stageAll(d(), id);
  const before = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(before.runId).toBe(2);

  const stale = await h.engine.service.handleTaskFailure({ type: "TASK_FAILED", batchId: id, runId: 1, taskId: oldTask.id, error: "late" });
  expect(stale.outcome).toBe("ignored");
  expect(stale.reason).toBe("reported for run 1; the batch is on run 2");
  const after = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(after.version).toBe(before.version);
  expect(after.failed).toBe(0);
  const entry = await h.db.prisma.historyEntry.findFirstOrThrow({ where: { batchId: id }, orderBy: { seq: "desc" } });
  expect(entry).toMatchObject({ outcome: "ignored", eventType: "TASK_FAILED", source: "worker" });

  await finishTasks(d(), id);
  expect((await h.db.prisma.batch.findUniqueOrThrow({ where: { id } })).status).toBe("COMPLETED");
});

test("a staging report for a document of another batch changes nothing", async () => {
  const a = await batchIn(d(), "STAGING");
  const b = await batchIn(d(), "STAGING");
  const docOfB = (await h.db.prisma.document.findMany({ where: { batchId: b } }))[0]!;
  const r = await h.engine.service.handleDocumentStageFailure({ type: "DOCUMENT_STAGE_FAILED", batchId: a, runId: 1, documentId: docOfB.id, error: "x" });
  expect(r.outcome).toBe("ignored");
  expect((await h.db.prisma.document.findUniqueOrThrow({ where: { id: docOfB.id } })).stageStatus).toBe("running");
});

test("retry-failed creates a run over the unsucceeded tasks only and keeps the succeeded results", async () => {
  const id = await batchIn(d(), "COMPLETED_WITH_FAILURES");
  const run1 = await h.db.prisma.task.findMany({ where: { batchId: id, runId: 1 } });
  expect(run1.map((t) => t.status).sort()).toEqual(["failed", "succeeded"]);
  await h.engine.service.requestStateChange(id, "retry-failed");
  const run2 = await h.db.prisma.task.findMany({ where: { batchId: id, runId: 2 } });
  expect(run2).toHaveLength(1);
  expect(run2[0]?.documentId).toBe(run1.find((t) => t.status === "failed")?.documentId);
  await finishTasks(d(), id);
  const batch = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(batch).toMatchObject({ status: "COMPLETED", runId: 2, total: 1, succeeded: 1 });
  expect(await h.db.prisma.task.count({ where: { batchId: id, runId: 1, status: "succeeded" } })).toBe(1);
});

test("pause withdraws queued jobs: withdrawn tasks go back to pending, and resume dispatches exactly them", async () => {
  const id = await batchIn(d(), "ANALYZING.running");
  const running = await runningTasks(h.db.prisma, id);
  await h.engine.service.requestStateChange(id, "pause");
  const effect = await h.db.prisma.effect.findFirstOrThrow({ where: { batchId: id, type: "withdrawJobs" } });
  expect(effect.payload).toMatchObject({ batchId: id, items: [{ type: "withdrawJobs", kind: "analysis", runId: 1 }] });
  // The relay found one job still waiting and took it back; the other was already active.
  const r = await h.engine.service.report({ type: "JOBS_WITHDRAWN", batchId: id, runId: 1, kind: "analysis", ids: [running[0]!.id] });
  expect(r.outcome).toBe("accepted");
  let batch = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(batch).toMatchObject({ status: "PAUSED", pending: 1, running: 1 });
  await h.engine.service.report({ type: "TASK_COMPLETED", batchId: id, runId: 1, taskId: running[1]!.id, output: "late but kept" });
  batch = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(batch).toMatchObject({ status: "PAUSED", pending: 1, running: 0, succeeded: 1 });

  await h.engine.service.requestStateChange(id, "resume");
  const dispatched = await h.db.prisma.effect.findMany({ where: { batchId: id, type: "enqueueAnalysis" }, orderBy: { id: "asc" } });
  expect(dispatched.at(-1)?.payload).toMatchObject({ batchId: id, items: [{ type: "enqueueAnalysis", runId: 1, units: [{ id: running[0]!.id }] }] });
  await finishTasks(d(), id);
  expect(await h.db.prisma.batch.findUniqueOrThrow({ where: { id } })).toMatchObject({ status: "COMPLETED", succeeded: 2 });
});

test("a task may start only while its batch runs: TASK_STARTED is accepted in ANALYZING.running and ignored once paused", async () => {
  const id = await batchIn(d(), "ANALYZING.running");
  const [first, second] = await runningTasks(h.db.prisma, id);
  const started = await h.engine.service.report({ type: "TASK_STARTED", batchId: id, runId: 1, taskId: first!.id });
  expect(started.outcome).toBe("accepted");
  expect((await h.db.prisma.task.findUniqueOrThrow({ where: { id: first!.id } })).attempts).toBe(1);
  await h.engine.service.requestStateChange(id, "pause");
  const refused = await h.engine.service.report({ type: "TASK_STARTED", batchId: id, runId: 1, taskId: second!.id });
  expect(refused.outcome).toBe("ignored");
  expect((await h.db.prisma.task.findUniqueOrThrow({ where: { id: second!.id } })).attempts).toBe(0);
});
