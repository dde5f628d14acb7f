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
  return async function withdraw(batchId: string, runId: number, kind: WorkKind): Promise<void> {
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
    const withdrawn: { id: string; dispatch: number }[] = [];
    const inFlight: string[] = [];
    for (let i = 0; i < units.length; i++) {
      const unit = units[i]!;
      const state = states[i]!;
      // A job Redis no longer knows (lost, or never enqueued) or that finished cannot run either;
      // the store checks each unit is still dispatched before counting it withdrawn.
      if (FINISHED.has(state) || (NOT_STARTED.has(state) && (await queue.remove(unit.jobId)) === 1)) withdrawn.push(unit);
      else if (state === "active") inFlight.push(unit.jobId);
    }
    if (withdrawn.length) {
      await service.deliver({ type: "JOBS_WITHDRAWN", batchId, runId, kind, ids: withdrawn.map((u) => u.id), dispatches: withdrawn.map((u) => u.dispatch) });
    }
    if (inFlight.length && publisher && abortChannel) {
      const batch = await prisma.batch.findUnique({ where: { id: batchId }, select: { status: true } });
      if (!batch || batch.status === "CANCELLED" || batch.status.startsWith("FAILED")) {
        await publisher.publish(abortChannel, JSON.stringify({ batchId, jobIds: inFlight }));
      }
    }
    logger.debug({ batchId, runId, kind, withdrawn: withdrawn.length, inFlight: inFlight.length }, "withdrew jobs");
  };
}

export type Withdrawer = ReturnType<typeof createWithdrawer>;
