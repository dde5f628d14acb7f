// After a resume, every dispatched task has a live job at once, without the reconciler: even when the jobs that handed their tasks back (their start refused by the pause) are still active in BullMQ when the tasks are dispatched again.
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { jobIds, QUEUE_NAMES, type AnalysisJob } from "../src/workers/queues";
import { act, uploadBatch } from "./support/e2e";
import { createSystem, waitFor, waitForStatus, type TestSystem } from "./support/system";
import { redisUrl } from "./support/urls";

let s: TestSystem;
beforeAll(async () => {
  // No workers of its own and no periodic reconcile: only the relay can give the tasks jobs.
  s = await createSystem({ workers: false, maxRunningBatches: 5, env: { RECONCILE_INTERVAL_MS: "600000" } });
});
afterAll(() => s.close());

const gate = () => {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
};
const stateOf = (t: { id: string; dispatches: number }) => s.background.queues.analysis.getJobState(jobIds.analysis({ taskId: t.id, dispatch: t.dispatches }));

test("resume while the handed-back jobs are still active", async () => {
  const id = await uploadBatch(s, { texts: 8 });
  await act(s, id, "stage");
  for (const d of await s.db.prisma.document.findMany({ where: { batchId: id } })) {
    await s.engine.service.handleDocumentStaged({
      type: "DOCUMENT_STAGED", batchId: id, runId: 1, documentId: d.id,
      text: "t", chunks: [{ index: 0, text: "t", tokens: 1, start: 0, end: 1 }], tokenCount: 1, textSha256: "0".repeat(64),
    });
  }
  await waitForStatus(s, id, "STAGED");
  await act(s, id, "run");

  // A worker that takes the four dispatched jobs, asks to start them only after the pause, and
  // hands each task back the way the analysis processor does — then keeps the job active.
  const askToStart = gate();
  const finish = gate();
  let handedBack = 0;
  const connection = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  const worker = new Worker<AnalysisJob>(QUEUE_NAMES.analysis, async (job) => {
    await askToStart.opened;
    const { batchId, runId, taskId } = job.data;
    const start = await s.engine.service.report({ type: "TASK_STARTED", batchId, runId, taskId });
    if (start.outcome === "ignored") await s.engine.service.deliver({ type: "JOBS_WITHDRAWN", batchId, runId, kind: "analysis", ids: [taskId] });
    handedBack++;
    await finish.opened;
    return "handed back";
  }, { connection, prefix: s.prefix, concurrency: 4 });
  try {
    const first = await waitFor("four jobs active", async () => {
      const tasks = await s.db.prisma.task.findMany({ where: { batchId: id, status: "running" } });
      const states = await Promise.all(tasks.map(stateOf));
      return tasks.length === 4 && states.every((x) => x === "active") ? tasks : undefined;
    });

    expect((await act(s, id, "pause")).status).toBe(200);
    askToStart.open();
    await waitFor("every task handed back", async () => handedBack === 4 && (await s.db.prisma.batch.findUniqueOrThrow({ where: { id } })).running === 0);

    expect((await act(s, id, "resume")).status).toBe(200);
    const again = await waitFor("every dispatched task to have a live job", async () => {
      const tasks = await s.db.prisma.task.findMany({ where: { batchId: id, status: "running" } });
      const states = await Promise.all(tasks.map(stateOf));
      return tasks.length === 4 && states.every((x) => x === "waiting") ? tasks : undefined;
    }, 5_000);
    // The same tasks went out again while their old jobs were still active.
    expect(again.map((t) => t.id).sort()).toEqual(first.map((t) => t.id).sort());
    expect(again.every((t) => t.dispatches === 2)).toBe(true);
    expect(await Promise.all(first.map(stateOf))).toEqual(["active", "active", "active", "active"]);
  } finally {
    finish.open();
    await worker.close();
    await connection.quit();
  }
});
