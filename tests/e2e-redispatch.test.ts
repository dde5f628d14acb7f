// A task handed back by its own job (its start refused, e.g. by a pause) leaves a completed job of the same id in Redis; when the task is dispatched again, the relay must give it a live job, without waiting for the reconciler.
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { jobIds, QUEUE_NAMES } from "../src/workers/queues";
import { act, uploadBatch } from "./support/e2e";
import { createSystem, waitFor, waitForStatus, type TestSystem } from "./support/system";
import { redisUrl } from "./support/urls";

let s: TestSystem;
beforeAll(async () => {
  // No workers and no periodic reconcile: the jobs stay where the test puts them.
  s = await createSystem({ workers: false, maxRunningBatches: 5, env: { RECONCILE_INTERVAL_MS: "600000" } });
});
afterAll(() => s.close());

/** The BullMQ state of each task's job. */
const jobStates = (tasks: { id: string; dispatches: number }[]) =>
  Promise.all(tasks.map((t) => s.background.queues.analysis.getJobState(jobIds.analysis({ taskId: t.id, dispatch: t.dispatches }))));

/** Stages through the service (this system has no staging workers), then runs. */
async function stageAndRun(id: string) {
  await act(s, id, "stage");
  for (const d of await s.db.prisma.document.findMany({ where: { batchId: id } })) {
    await s.engine.service.handleDocumentStaged({
      type: "DOCUMENT_STAGED", batchId: id, runId: 1, documentId: d.id,
      text: "t", chunks: [{ index: 0, text: "t", tokens: 1, start: 0, end: 1 }], tokenCount: 1, textSha256: "0".repeat(64),
    });
  }
  await waitForStatus(s, id, "STAGED");
  await act(s, id, "run");
}

test("re-dispatch replaces a finished job of the same id", async () => {
  const id = await uploadBatch(s, { texts: 3 });
  await stageAndRun(id);
  const dispatched = await waitFor("the dispatched tasks' jobs waiting", async () => {
    const tasks = await s.db.prisma.task.findMany({ where: { batchId: id, status: "running" } });
    const states = await jobStates(tasks);
    return tasks.length === 3 && states.every((x) => x === "waiting") ? tasks : undefined;
  });

  await act(s, id, "pause");
  await waitFor("the waiting jobs withdrawn", async () => (await s.db.prisma.batch.findUniqueOrThrow({ where: { id } })).running === 0);

  // What a job whose start was refused leaves behind: a completed job with the task's job id.
  const connection = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  for (const t of dispatched) {
    const job = { batchId: id, runId: 1, taskId: t.id, dispatch: t.dispatches };
    await s.background.queues.analysis.add("analyse", job, { jobId: jobIds.analysis(job) });
  }
  const stale = new Worker(QUEUE_NAMES.analysis, async () => "handed back", { connection, prefix: s.prefix });
  await waitFor("the stale jobs completed", async () => {
    const states = await jobStates(dispatched);
    return states.every((x) => x === "completed");
  });
  await stale.close();
  await connection.quit();

  await act(s, id, "resume");
  await waitFor("every dispatched task to have a live job", async () => {
    const tasks = await s.db.prisma.task.findMany({ where: { batchId: id, status: "running" } });
    const states = await jobStates(tasks);
    return tasks.length === 3 && states.every((x) => x === "waiting");
  }, 5_000);
});

test("cancel settles a task whose job already finished, instead of counting it running for ever", async () => {
  const id = await uploadBatch(s, { texts: 2 });
  await stageAndRun(id);
  const tasks = await waitFor("both tasks dispatched", async () => {
    const t = await s.db.prisma.task.findMany({ where: { batchId: id, status: "running" } });
    return t.length === 2 ? t : undefined;
  });
  // Finish the jobs behind the batch's back, as a job that handed its task back would.
  const connection = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  const stale = new Worker(QUEUE_NAMES.analysis, async () => "handed back", { connection, prefix: s.prefix });
  await waitFor("the jobs finished", async () => {
    const states = await jobStates(tasks);
    return states.every((x) => x === "completed");
  });
  await stale.close();
  await connection.quit();

  await act(s, id, "cancel");
  const settled = await waitFor("the cancelled batch to settle", async () => {
    const b = await s.db.prisma.batch.findUniqueOrThrow({ where: { id } });
    return b.running === 0 ? b : undefined;
  }, 5_000);
  expect(settled).toMatchObject({ status: "CANCELLED", total: 2, cancelled: 2 });
});
