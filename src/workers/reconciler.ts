/**
 * The reconciler: PostgreSQL says which units are dispatched; Redis should hold a job for
 * each. At start and periodically it re-enqueues what Redis lacks (a Redis that lost all its
 * data included), sweeps the outbox, and starts queued batches when slots are free.
 *
 * A dispatched unit whose job BullMQ holds as `failed` spent its attempts without reporting
 * (its worker died on it more often than `maxStalledCount` allows, or its report kept failing):
 * running it again would repeat whatever killed the workers, so the reconciler reports the unit
 * failed, with the job's reason, instead. Only a job Redis does not know at all is enqueued again.
 */
import type { BatchService } from "../batch-service";
import type { PrismaClient } from "../db";
import type { Logger } from "../logger";
import type { EffectsRelay } from "./effects-relay";
import { ensurePollers, reconcileLane } from "./lane/reconcile";
import { jobIds, type Queues } from "./queues";

export interface ReconcilerDeps {
  prisma: PrismaClient;
  queues: Queues;
  service: BatchService;
  relay: EffectsRelay;
  logger: Logger;
}

/** Job states that mean the job will still run (or is running). */
const ALIVE = new Set(["active", "waiting", "delayed", "prioritized", "waiting-children", "wait"]);

/** The prefix of the reason a unit is failed with when its job failed without reporting. */
export const JOB_FAILED = "job_failed";

type Repair = "alive" | "settled" | "requeued" | "failed";

export function createReconciler({ prisma, queues, service, relay, logger }: ReconcilerDeps) {
  async function reconcile(): Promise<{ requeued: number; failed: number }> {
    await relay.drain();
    await service.promoteQueued();
    await service.sweepInbox();
    const repairs: Repair[] = [];

    const staging = await prisma.batch.findMany({ where: { status: "STAGING" }, select: { id: true, runId: true } });
    for (const b of staging) {
      const docs = await prisma.document.findMany({
        where: { batchId: b.id, stageRunId: b.runId, stageStatus: "running" },
        select: { id: true, name: true, dispatches: true },
      });
      for (const d of docs) {
        const data = { batchId: b.id, runId: b.runId, documentId: d.id, dispatch: d.dispatches };
        const stillRunning = () => awaitsReport("documents", b.id, d.id, d.dispatches);
        const fail = (reason: string) =>
          service.deliver({ type: "DOCUMENT_STAGE_FAILED", batchId: b.id, runId: b.runId, documentId: d.id, error: `${JOB_FAILED}: ${d.name}: ${reason}` });
        repairs.push(await ensureJob(queues.staging, jobIds.staging(data), "stage", data, stillRunning, fail));
      }
    }

    const pollers = await ensurePollers({ prisma, queues });
    repairs.push(...Array.from({ length: pollers }, (): Repair => "requeued"));
    const running = await prisma.batch.findMany({ where: { status: "ANALYZING", substate: "running" }, select: { id: true, runId: true, analysis: true } });
    for (const b of running) {
      const lane = (b.analysis as { mode?: string } | null)?.mode === "batch" ? await reconcileLane({ prisma, queues }, b.id, b.runId) : null;
      if (lane?.added) repairs.push(...Array.from({ length: lane.added }, (): Repair => "requeued"));
      const tasks = lane
        ? lane.live
        : await prisma.task.findMany({ where: { batchId: b.id, runId: b.runId, status: "running" }, select: { id: true, dispatches: true } });
      for (const t of tasks) {
        const data = { batchId: b.id, runId: b.runId, taskId: t.id, dispatch: t.dispatches };
        const stillRunning = () => awaitsReport("tasks", b.id, t.id, t.dispatches);
        const fail = (reason: string) => service.deliver({ type: "TASK_FAILED", batchId: b.id, runId: b.runId, taskId: t.id, error: `${JOB_FAILED}: ${reason}` });
        repairs.push(await ensureJob(queues.analysis, jobIds.analysis(data), "analyse", data, stillRunning, fail));
      }
    }
    const requeued = repairs.filter((r) => r === "requeued").length;
    const failed = repairs.filter((r) => r === "failed").length;
    if (requeued) logger.warn({ requeued }, "re-enqueued jobs that Redis had lost");
    if (failed) logger.warn({ failed }, "reported units whose jobs failed without a report");
    return { requeued, failed };
  }

  /**
   * Whether a unit is still dispatched (the same dispatch) with no report of it waiting in the
   * inbox: a job reports to the inbox before it completes, so a finished job whose report is
   * not applied yet is not lost. One statement, so a drain cannot fall between the two checks.
   */
  async function awaitsReport(table: "documents" | "tasks", batchId: string, unitId: string, dispatch: number): Promise<boolean> {
    const rows =
      table === "documents"
        ? await prisma.$queryRaw<{ ok: boolean }[]>`
            SELECT (d.stage_status = 'running' AND d.dispatches = ${dispatch}
                    AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.batch_id = d.batch_id AND i.unit_key = d.id::text)) AS ok
            FROM documents d WHERE d.id = ${unitId}::uuid AND d.batch_id = ${batchId}::uuid`
        : await prisma.$queryRaw<{ ok: boolean }[]>`
            SELECT (t.status = 'running' AND t.dispatches = ${dispatch}
                    AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.batch_id = t.batch_id AND i.unit_key = t.id)) AS ok
            FROM tasks t WHERE t.id = ${unitId} AND t.batch_id = ${batchId}::uuid`;
    return rows[0]?.ok === true;
  }

  /**
   * Adds the job when Redis has no live job of that id, or reports the unit failed when its job
   * failed for good.
   */
  async function ensureJob<T>(
    queue: {
      getJobState(id: string): Promise<string>;
      getJob(id: string): Promise<{ failedReason?: string } | undefined>;
      add(name: string, data: T, opts: { jobId: string }): Promise<unknown>;
    },
    jobId: string,
    name: string,
    data: T,
    stillRunning: () => Promise<boolean>,
    fail: (reason: string) => Promise<unknown>,
  ): Promise<Repair> {
    const state = await queue.getJobState(jobId);
    if (ALIVE.has(state)) return "alive";
    // A completed job delivered its report to the inbox before it completed; the unit stays
    // dispatched only until the inbox is applied. Running it again would pay for it twice.
    if (state === "completed") return "settled";
    // Completed jobs are trimmed, so a missing job whose unit the database called dispatched a
    // moment ago may have reported just now: look again. Only a unit still dispatched runs again.
    if (!(await stillRunning())) return "settled";
    if (state === "failed") {
      const job = await queue.getJob(jobId);
      await fail(job?.failedReason || "its job failed");
      return "failed";
    }
    await queue.add(name, data, { jobId });
    return "requeued";
  }

  return { reconcile };
}

export type Reconciler = ReturnType<typeof createReconciler>;
