/**
 * The effects relay: turns the outbox (queue work committed with a transition) into BullMQ
 * jobs. It runs right after each local commit and on a periodic sweep, in every process, so
 * a crash between commit and enqueue is repaired by whichever process sweeps next.
 *
 * Rows are claimed with `FOR UPDATE SKIP LOCKED`, so processes share the work without
 * taking the same row; a row is marked done only after its jobs are in Redis, and a crash
 * before that leaves it pending. Job ids are deterministic, so a repeated enqueue is harmless.
 */
import type { Redis } from "ioredis";
import type { OutboxEffect } from "../actor-store";
import type { BatchService } from "../batch-service";
import type { PrismaClient } from "../db";
import type { Logger } from "../logger";
import type { WorkKind } from "../machines/batch.events";
import { jobIds, type Queues } from "./queues";

export interface EffectsRelayDeps {
  prisma: PrismaClient;
  queues: Queues;
  service: BatchService;
  logger: Logger;
  /** Publishes abort requests for jobs in flight of a cancelled or failed batch. */
  publisher?: Redis;
  abortChannel?: string;
  /** Most effects claimed per transaction (default 100). */
  claimSize?: number;
}

interface EffectRow {
  id: bigint;
  attempts: number;
  payload: OutboxEffect;
}

/** Job states in which a job has not started and can be taken back. */
const NOT_STARTED = new Set(["waiting", "delayed", "prioritized", "waiting-children", "wait"]);
/**
 * Job states in which a job will never run (again). A unit still dispatched with such a job
 * has nothing that will report for it: its job reports before it finishes, so it already did.
 */
const FINISHED = new Set(["completed", "failed", "unknown"]);

export function createEffectsRelay(deps: EffectsRelayDeps) {
  const { prisma, queues, service, logger } = deps;
  const claimSize = deps.claimSize ?? 100;
  let draining: Promise<void> | null = null;
  let again = false;

  /** Dispatches every pending effect; concurrent calls coalesce into one more pass. */
  function drain(): Promise<void> {
    if (draining) {
      again = true;
      return draining;
    }
    draining = (async () => {
      try {
        do {
          again = false;
          while ((await drainOnce()) === claimSize);
        } while (again);
      } finally {
        draining = null;
      }
    })();
    return draining;
  }

  async function drainOnce(): Promise<number> {
    return prisma.$transaction(
      async (tx) => {
        const rows = await tx.$queryRaw<EffectRow[]>`
          SELECT id, attempts, payload FROM effects
          WHERE status = 'pending' AND available_at <= now()
          ORDER BY id LIMIT ${claimSize} FOR UPDATE SKIP LOCKED`;
        for (const row of rows) {
          try {
            await carryOut(row.payload);
            await tx.$executeRaw`UPDATE effects SET status = 'done', dispatched_at = now(), attempts = attempts + 1 WHERE id = ${row.id}`;
          } catch (err) {
            const delaySeconds = Math.min(60, 2 ** row.attempts);
            logger.warn({ err, effectId: row.id.toString(), batchId: row.payload.batchId }, "effect dispatch failed; will retry");
            await tx.$executeRaw`UPDATE effects SET attempts = attempts + 1, last_error = ${String(err)},
              available_at = now() + make_interval(secs => ${delaySeconds}) WHERE id = ${row.id}`;
          }
        }
        return rows.length;
      },
      { timeout: 120_000, maxWait: 10_000 },
    );
  }

  /**
   * BullMQ ignores an add whose job id still exists, finished jobs included. A unit dispatched
   * again (its earlier job handed it back, e.g. its start was refused by a pause) would then
   * get no job, so a finished job of the same id goes first. A live one is left alone
   * (`remove` does not touch an active job), and a waiting one is re-added at once.
   */
  async function clearFinished(queue: Queues["staging"] | Queues["analysis"], jobIdsToAdd: string[]) {
    await Promise.all(jobIdsToAdd.map((id) => queue.remove(id)));
  }

  async function carryOut(effect: OutboxEffect): Promise<void> {
    switch (effect.type) {
      case "enqueueStaging":
        await clearFinished(queues.staging, effect.documentIds.map((documentId) => jobIds.staging({ batchId: effect.batchId, runId: effect.runId, documentId })));
        await queues.staging.addBulk(
          effect.documentIds.map((documentId) => {
            const data = { batchId: effect.batchId, runId: effect.runId, documentId };
            return { name: "stage", data, opts: { jobId: jobIds.staging(data) } };
          }),
        );
        return;
      case "enqueueAnalysis":
        await clearFinished(queues.analysis, effect.taskIds.map((taskId) => jobIds.analysis({ taskId })));
        await queues.analysis.addBulk(
          effect.taskIds.map((taskId) => ({
            name: "analyse",
            data: { batchId: effect.batchId, runId: effect.runId, taskId },
            opts: { jobId: jobIds.analysis({ taskId }) },
          })),
        );
        return;
      case "withdrawJobs":
        await withdraw(effect.batchId, effect.runId, effect.kind);
        return;
    }
  }

  /**
   * Takes back the jobs of a batch's run that have not started, and tells the batch which;
   * jobs in flight finish (and are counted) unless the batch was cancelled or failed, in
   * which case their workers are asked to abort them.
   */
  async function withdraw(batchId: string, runId: number, kind: WorkKind) {
    const units =
      kind === "staging"
        ? (await prisma.document.findMany({ where: { batchId, stageRunId: runId, stageStatus: "running" }, select: { id: true } })).map(
            (d) => ({ id: d.id, jobId: jobIds.staging({ batchId, runId, documentId: d.id }) }),
          )
        : (await prisma.task.findMany({ where: { batchId, runId, status: "running" }, select: { id: true } })).map((t) => ({
            id: t.id,
            jobId: jobIds.analysis({ taskId: t.id }),
          }));
    const queue = kind === "staging" ? queues.staging : queues.analysis;
    const withdrawn: string[] = [];
    const inFlight: string[] = [];
    for (const unit of units) {
      const state = await queue.getJobState(unit.jobId);
      // A job Redis no longer knows (lost, or never enqueued) or that finished cannot run either;
      // the batch service checks each unit is still dispatched before counting it withdrawn.
      if (FINISHED.has(state) || (NOT_STARTED.has(state) && (await queue.remove(unit.jobId)) === 1)) withdrawn.push(unit.id);
      else if (state === "active") inFlight.push(unit.jobId);
    }
    if (withdrawn.length) await service.report({ type: "JOBS_WITHDRAWN", batchId, runId, kind, ids: withdrawn });
    if (inFlight.length && deps.publisher && deps.abortChannel) {
      const batch = await prisma.batch.findUnique({ where: { id: batchId }, select: { status: true } });
      if (!batch || batch.status === "CANCELLED" || batch.status.startsWith("FAILED")) {
        await deps.publisher.publish(deps.abortChannel, JSON.stringify({ batchId, jobIds: inFlight }));
      }
    }
    logger.debug({ batchId, runId, kind, withdrawn: withdrawn.length, inFlight: inFlight.length }, "withdrew jobs");
  }

  /** Drops dispatched effects older than a day: the history keeps the record of what happened. */
  async function prune(): Promise<number> {
    return prisma.$executeRaw`DELETE FROM effects WHERE status = 'done' AND dispatched_at < now() - interval '1 day'`;
  }

  return { drain, prune };
}

export type EffectsRelay = ReturnType<typeof createEffectsRelay>;
