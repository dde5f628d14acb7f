/**
 * Withdrawal: takes back the jobs of a batch's run that have not started, and tells the batch
 * which (through the inbox). Jobs in flight finish and are counted, unless the batch was
 * cancelled or failed, in which case their workers are asked to abort them. The relay hands
 * each `withdrawJobs` item here; the decisions about units live here, not in the relay.
 */
import type { Redis } from "ioredis";
import type { BatchService } from "../batch-service";
import type { PrismaClient } from "../db";
import type { Logger } from "../logger";
import type { WorkKind } from "../vocabulary";
import { jobIds, type Queues } from "./queues";

export interface WithdrawDeps {
  prisma: PrismaClient;
  queues: Queues;
  service: BatchService;
  logger: Logger;
  publisher?: Redis;
  abortChannel?: string;
}

/** Job states in which a job has not started and can be taken back. */
const NOT_STARTED = new Set(["waiting", "delayed", "prioritized", "waiting-children", "wait"]);
/**
 * Job states in which a job will never run (again). A unit still dispatched with such a job
 * has nothing that will report for it: its job reports before it finishes, so it already did.
 */
const FINISHED = new Set(["completed", "failed", "unknown"]);

export function createWithdrawer({ prisma, queues, service, logger, publisher, abortChannel }: WithdrawDeps) {
  /**
   * Provider batches (batch lane) are not withdrawn here: their pollers, run now instead of at their
   * next look, see the batch no longer analysing and cancel them, and hand back what they did not finish.
   */
  async function hurryPollers(batchId: string) {
    const open = await prisma.providerBatch.findMany({ where: { batchId, status: { notIn: ["ended", "failed", "submitting"] } }, select: { id: true } });
    for (const p of open) {
      const job = await queues.lane.getJob(jobIds.lanePoll(p.id));
      if (job && (await job.isDelayed())) await job.promote();
    }
  }

  return async function withdraw(batchId: string, runId: number, kind: WorkKind): Promise<void> {
    const readBatch = () => prisma.batch.findUnique({ where: { id: batchId }, select: { status: true, runId: true } });
    // Resumed before its withdrawal was carried out: the jobs are wanted again, and taking them
    // back now would leave their units without a live job until the handback is applied.
    const runsAgain = (b: Awaited<ReturnType<typeof readBatch>>) => !!b && b.runId === runId && (b.status === "ANALYZING" || b.status === "STAGING");
    const batch = await readBatch();
    if (runsAgain(batch)) {
      logger.debug({ batchId, runId, kind }, "withdrawal skipped: the batch runs again");
      return;
    }
    const units =
      kind === "staging"
        ? (await prisma.document.findMany({ where: { batchId, stageRunId: runId, stageStatus: "running" }, select: { id: true, dispatches: true } })).map(
            (d) => ({ id: d.id, dispatch: d.dispatches, jobId: jobIds.staging({ batchId, runId, documentId: d.id, dispatch: d.dispatches }) }),
          )
        : (await prisma.task.findMany({ where: { batchId, runId, status: "running" }, select: { id: true, dispatches: true } })).map((t) => ({
            id: t.id,
            dispatch: t.dispatches,
            jobId: jobIds.analysis({ taskId: t.id, dispatch: t.dispatches }),
          }));
    const queue = kind === "staging" ? queues.staging : queues.analysis;
    const states = await Promise.all(units.map((u) => queue.getJobState(u.jobId)));
    // Looking up a window of jobs takes a while on a busy machine: a resume may have come meanwhile.
    if (states.some((x) => NOT_STARTED.has(x)) && runsAgain(await readBatch())) {
      logger.debug({ batchId, runId, kind }, "withdrawal skipped: the batch runs again");
      return;
    }
    // A job Redis no longer knows (lost, or never enqueued) or that finished cannot run either;
    // the store checks each unit is still on that dispatch before counting it withdrawn.
    const removed = await Promise.all(units.map((u, i) => (NOT_STARTED.has(states[i]!) ? queue.remove(u.jobId) : Promise.resolve(0))));
    const withdrawn = units.filter((_, i) => FINISHED.has(states[i]!) || removed[i] === 1);
    const inFlight = units.filter((_, i) => states[i] === "active").map((u) => u.jobId);
    if (withdrawn.length) {
      await service.deliver({ type: "JOBS_WITHDRAWN", batchId, runId, kind, ids: withdrawn.map((u) => u.id), dispatches: withdrawn.map((u) => u.dispatch) });
    }
    if (inFlight.length && publisher && abortChannel) {
      if (!batch || batch.status === "CANCELLED" || batch.status.startsWith("FAILED")) {
        await publisher.publish(abortChannel, JSON.stringify({ batchId, jobIds: inFlight }));
      }
    }
    if (kind === "analysis") await hurryPollers(batchId);
    logger.debug({ batchId, runId, kind, withdrawn: withdrawn.length, inFlight: inFlight.length }, "withdrew jobs");
  };
}

export type Withdrawer = ReturnType<typeof createWithdrawer>;
