/**
 * The batch lane's submitter: sends a run's dispatched tasks that no provider batch carries yet as
 * provider batches. It reads those tasks from PostgreSQL when it runs, so any number of submit jobs
 * may overlap: the store hands each task to one provider batch only.
 *
 * Exactly once, across crashes: each task is started through the machine first (so nothing is sent
 * after a pause is accepted), then the store records the provider batch under an id of ours
 * (`PROVIDER_BATCH_OPENED`), and only then is it submitted, with that id in its metadata. A
 * submitter that dies before the provider's id is recorded leaves the provider batch `submitting`;
 * the next one (under a PostgreSQL advisory lock, so one at a time) looks for it at the provider
 * before submitting, and adopts it when found.
 */
import { randomUUID } from "node:crypto";
import type { Pool } from "pg";
import type { BatchService } from "../../batch-service";
import type { PrismaClient } from "../../db";
import type { Logger } from "../../logger";
import type { BatchPricing, PricingResolver } from "../../pricing";
import type { BatchProviderKind } from "../../vocabulary";
import type { BatchAnalysis } from "../analysis.worker";
import type { Availability } from "../availability";
import type { BatchClient, ProviderBatch } from "../providers/batch/lane";
import { splitIntoParts } from "../providers/batch/lane";
import { AuthenticationError } from "../providers/provider";
import { jobIds, type Queues } from "../queues";
import { classifyBatchError } from "./errors";
import { buildRequests, type LaneTask } from "./requests";

export interface LaneConfig {
  LANE_MAX_OPEN: number;
  LANE_MAX_REQUESTS?: number;
  LANE_POLL_MS: number;
  LANE_POLL_MAX_MS: number;
  LANE_MAX_SUBMISSIONS: number;
}

export interface LaneDeps {
  prisma: PrismaClient;
  pool: Pool;
  service: BatchService;
  queues: Queues;
  logger: Logger;
  availability: Availability;
  /** The batch's model and its price (the batch lane's: `analysis.mode` is `batch`). */
  pricing: PricingResolver;
  config: LaneConfig;
  /** The batch API for a batch's analysis; null when its provider has none (the offline analyzer). */
  clientFor(analysis: BatchAnalysis): { kind: BatchProviderKind; client: BatchClient } | null;
}

/** How far back a submission that was never recorded is looked for (clocks differ). */
const FIND_SLACK_MS = 10 * 60_000;

export function createLaneSubmitter(deps: LaneDeps) {
  const { prisma, pool, service, queues, logger, availability, pricing, config } = deps;
  const { untilSaved } = availability;
  const report = (r: Parameters<BatchService["report"]>[0]) => untilSaved(() => service.report(r));
  const deliver = (r: Parameters<BatchService["deliver"]>[0]) => untilSaved(() => service.deliver(r));

  /** Sends the live lane the tasks the batch lane cannot carry: their ordinary jobs, as the relay would add them. */
  async function handToLive(batchId: string, runId: number, tasks: LaneTask[]) {
    if (!tasks.length) return;
    await queues.analysis.addBulk(
      tasks.map((t) => {
        const data = { batchId, runId, taskId: t.id, dispatch: t.dispatches };
        return { name: "analyse", data, opts: { jobId: jobIds.analysis(data) } };
      }),
    );
  }

  /** Dispatched tasks of the run that no provider batch carries and no live job has answered. */
  async function unassigned(batchId: string, runId: number, skip: string[], limit: number): Promise<LaneTask[]> {
    return prisma.$queryRaw<LaneTask[]>`
      SELECT t.id, t.dispatches FROM tasks t
      WHERE t.batch_id = ${batchId}::uuid AND t.run_id = ${runId} AND t.status = 'running' AND t.provider_batch_id IS NULL
        AND NOT (t.id = ANY(${skip}::text[]))
        AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.batch_id = t.batch_id AND i.unit_key = t.id AND i.run_id = t.run_id
                        AND i.kind IN ('TASK_COMPLETED', 'TASK_FAILED'))
      ORDER BY t.position LIMIT ${limit}`;
  }

  async function openCount(batchId: string, runId: number): Promise<number> {
    return prisma.providerBatch.count({ where: { batchId, runId, status: { notIn: ["ended", "failed"] } } });
  }

  /**
   * Starts each task through the machine, as the dispatch this submitter read (a task dispatched
   * again since is not started by it); the ones it refuses (a pause came first) are handed back.
   */
  async function start(batchId: string, runId: number, tasks: LaneTask[]): Promise<LaneTask[]> {
    const results = await Promise.all(tasks.map((t) => report({ type: "TASK_STARTED", batchId, runId, taskId: t.id, dispatch: t.dispatches })));
    const started = tasks.filter((_, i) => results[i]!.outcome === "accepted");
    const refused = tasks.filter((_, i) => results[i]!.outcome === "ignored");
    if (refused.length) await handBack(batchId, runId, refused);
    return started;
  }

  function handBack(batchId: string, runId: number, tasks: LaneTask[]) {
    return deliver({ type: "JOBS_WITHDRAWN", batchId, runId, kind: "analysis", ids: tasks.map((t) => t.id), dispatches: tasks.map((t) => t.dispatches) });
  }

  async function run(job: { batchId: string; runId: number }): Promise<string> {
    const { batchId, runId } = job;
    const log = logger.child({ batchId, runId, component: "lane-submit" });
    const batch = await untilSaved(() => prisma.batch.findUnique({ where: { id: batchId }, select: { runId: true, status: true, analysis: true } }));
    if (!batch || batch.runId !== runId) return "skipped: the run is over";
    const analysis = batch.analysis as unknown as BatchAnalysis;
    const lane = deps.clientFor(analysis);
    if (!lane) {
      await deliver({ type: "FATAL_ERROR", batchId, runId, error: "the configured provider has no batch API: mode batch needs openai or anthropic" });
      return "no batch API";
    }
    const model = pricing(analysis);
    const maxRequests = Math.min(lane.client.limits.maxRequests, config.LANE_MAX_REQUESTS ?? Infinity);
    let submitted = 0;

    const leftover = await prisma.providerBatch.findMany({ where: { batchId, runId, status: "submitting" }, select: { id: true } });
    for (const part of leftover) if (await finish(part.id, lane, model, analysis, log)) submitted++;

    const handed: string[] = [];
    while (batch.status === "ANALYZING") {
      if ((await openCount(batchId, runId)) >= config.LANE_MAX_OPEN) break;
      const waiting = await unassigned(batchId, runId, handed, maxRequests);
      if (!waiting.length) break;
      const requests = await buildRequests(prisma, analysis, model, waiting.map((t) => t.id));
      for (const { task, error } of requests.impossible) {
        handed.push(task.id);
        await deliver({ type: "TASK_FAILED", batchId, runId, taskId: task.id, error });
      }
      handed.push(...requests.live.map((t) => t.id));
      await handToLive(batchId, runId, requests.live);
      const { parts, oversize } = splitIntoParts(requests.lines, { ...lane.client.limits, maxRequests }, lane.client.lineBytes);
      const byId = new Map(waiting.map((t) => [t.id, t]));
      if (oversize.length) {
        handed.push(...oversize.map((l) => l.customId));
        await handToLive(batchId, runId, oversize.map((l) => byId.get(l.customId)!));
      }
      const first = parts[0];
      if (!first) continue;
      const started = await start(batchId, runId, first.map((l) => byId.get(l.customId)!));
      if (!started.length) break;
      const id = randomUUID();
      const opened = await report({ type: "PROVIDER_BATCH_OPENED", batchId, runId, providerBatchId: id, provider: lane.kind, taskIds: started.map((t) => t.id) });
      if (opened.outcome !== "accepted") {
        // Paused or cancelled between the starts and now: the tasks go back, nothing is sent.
        await handBack(batchId, runId, started);
        break;
      }
      if (await finish(id, lane, model, analysis, log)) submitted++;
    }
    return `submitted ${submitted} provider batch(es)`;
  }

  /**
   * Submits a recorded provider batch that the provider does not know yet (or adopts the one a
   * crashed submitter created), records the provider's id and starts its poller. One process at a
   * time per provider batch (a session advisory lock); false when another holds it or it is done.
   */
  async function finish(
    id: string,
    lane: { kind: BatchProviderKind; client: BatchClient },
    model: BatchPricing,
    analysis: BatchAnalysis,
    log: Logger,
  ): Promise<boolean> {
    const conn = await pool.connect();
    try {
      const { rows } = await conn.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked`, [id]);
      if (!rows[0]?.locked) return false;
      try {
        const part = await prisma.providerBatch.findUnique({ where: { id } });
        if (!part || part.status !== "submitting") return false;
        const tasks = await prisma.task.findMany({ where: { providerBatchId: id }, select: { id: true } });
        const { batchId, runId } = part;
        if (!tasks.length) {
          await report({ type: "PROVIDER_BATCH_UPDATED", batchId, runId, providerBatchId: id, status: "ended", providerStatus: "empty" });
          return false;
        }
        const { lines } = await buildRequests(prisma, analysis, model, tasks.map((t) => t.id));
        const metadata = { tranche_batch: batchId, tranche_run: String(runId), tranche_part: id };
        let created: ProviderBatch;
        try {
          const found = await lane.client.find({ metadata, since: new Date(part.createdAt.getTime() - FIND_SLACK_MS), total: lines.length });
          if (found[0]) log.warn({ providerBatchId: id, providerId: found[0].id }, "adopting a provider batch submitted before a crash");
          created = found[0] ?? (await lane.client.submit(lines, metadata));
        } catch (err) {
          const failure = classifyBatchError(lane.kind, err);
          if (failure instanceof AuthenticationError) {
            await deliver({ type: "FATAL_ERROR", batchId, runId, error: failure.message });
            return false;
          }
          if (failure.retryable) throw failure;
          log.warn({ err: failure, providerBatchId: id }, "the provider refused the provider batch");
          for (const t of tasks) await deliver({ type: "TASK_FAILED", batchId, runId, taskId: t.id, error: failure.message });
          await report({ type: "PROVIDER_BATCH_UPDATED", batchId, runId, providerBatchId: id, status: "failed", errors: [failure.message] });
          return false;
        }
        await report({
          type: "PROVIDER_BATCH_UPDATED",
          batchId,
          runId,
          providerBatchId: id,
          providerId: created.id,
          // Only the poller settles a provider batch, after reporting its lines: one that already
          // ended (an adopted one) is recorded as finishing until then.
          status: created.status === "ended" || created.status === "failed" ? "finalizing" : created.status,
          providerStatus: created.providerStatus,
          requestCounts: created.counts,
          ...(created.expiresAt && { expiresAt: created.expiresAt.toISOString() }),
        });
        await queues.lane.add("poll", { kind: "poll", batchId, runId, providerBatchId: id }, { jobId: jobIds.lanePoll(id), delay: config.LANE_POLL_MS });
        log.info({ providerBatchId: id, providerId: created.id, requests: lines.length }, "provider batch submitted");
        return true;
      } finally {
        await conn.query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, [id]);
      }
    } finally {
      conn.release();
    }
  }

  return { run };
}
