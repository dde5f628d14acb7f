/**
 * The analysis processor: asks the batch whether its task may start (so nothing starts
 * after a pause is accepted), calls the provider with the batch's analysis definition and
 * the document's chunks, and reports the result to the inbox (the job is acknowledged only once
 * the report is durable). Writes nothing itself.
 */
import type { Job } from "bullmq";
import type { BatchService } from "../batch-service";
import type { PrismaClient } from "../db";
import type { Chunk } from "../machines/batch.events";
import type { Logger } from "../logger";
import type { ProviderUsageSample } from "../metrics";
import { costOf, type ModelInfo, type PricingResolver } from "../pricing";
import type { AnalysisInput } from "../server/http-schemas";
import type { Availability } from "./availability";
import { isLastAttempt } from "./jobs";
import { addUsage, AuthenticationError, NO_USAGE, ProviderError, type Provider, type ProviderUsage } from "./providers/provider";
import type { AnalysisJob, TaskOutcome } from "./queues";
import { analysisRequest } from "./analysis-request";

export interface AnalysisDeps {
  prisma: PrismaClient;
  service: BatchService;
  logger: Logger;
  /** Database steps wait out an outage through it instead of failing the job. */
  availability: Availability;
  /** The provider for a batch's analysis definition (its `provider` field may pick one). */
  providerFor(analysis: BatchAnalysis): Provider;
  /** What a batch's model costs and allows (the same resolution the store and staging use). */
  pricing: PricingResolver;
  /** Told what each analysis used, succeeded or failed (metrics). */
  onUsage?: (usage: ProviderUsageSample) => void;
  /** Tries of one report before the job is left to BullMQ's retry (default 5). */
  reportAttempts?: number;
  /** Wait before the second try of a report, doubling for each further one (default 250 ms). */
  reportBackoffMs?: number;
}

/** The analysis definition as stored with the batch (snake_case, as the API takes it). */
export type BatchAnalysis = AnalysisInput;

/** The usage fields of a task report: what the provider billed, and its price when the model has one. */
function usageReport(usage: ProviderUsage, model: ModelInfo, billed: boolean) {
  return {
    requests: usage.requests,
    inputTokens: usage.inputTokens,
    cachedInputTokens: usage.cachedInputTokens,
    outputTokens: usage.outputTokens,
    costUsd: billed ? costOf(usage, model.price) : 0,
  };
}

export function createAnalysisProcessor({
  prisma,
  service,
  logger,
  availability,
  providerFor,
  pricing,
  onUsage,
  reportAttempts = 5,
  reportBackoffMs = 250,
}: AnalysisDeps) {
  // Every step that reads or reports waits out a database outage (a report is safe to repeat),
  // so an outage neither burns the job's attempts nor repeats a provider call already answered.
  const { untilSaved } = availability;
  const report = (r: Parameters<BatchService["report"]>[0]) => untilSaved(() => service.report(r));
  const deliver = (r: Parameters<BatchService["deliver"]>[0]) => untilSaved(() => service.deliver(r));
  const unpriced = new Set<string>();
  return async (job: Job<AnalysisJob>, _token?: string, signal?: AbortSignal): Promise<string> => {
    const { batchId, runId, taskId, dispatch } = job.data;
    const log = logger.child({ batchId, taskId, jobId: job.id });
    // An earlier run of this job was answered (and paid) but could not report: report that answer.
    if (job.data.outcome) {
      await reportOutcome(job.data.outcome, log);
      return "reported (held outcome)";
    }
    const start = await report({ type: "TASK_STARTED", batchId, runId, taskId, dispatch, ...(await spentSoFar(job)) });
    if (start.outcome !== "accepted") {
      // The batch is paused, cancelled or failed, or the task is done: hand the job back.
      if (start.outcome === "ignored") await deliver({ type: "JOBS_WITHDRAWN", batchId, runId, kind: "analysis", ids: [taskId], dispatches: [dispatch] });
      return `not started: ${start.reason ?? start.outcome}`;
    }
    const task = await untilSaved(() =>
      prisma.task.findUnique({
        where: { id: taskId },
        select: { document: { select: { name: true, chunks: true } }, batch: { select: { analysis: true } } },
      }),
    );
    if (!task) return "skipped: task deleted";
    const analysis = task.batch.analysis as unknown as BatchAnalysis;
    const provider = providerFor(analysis);
    // Live calls at live prices, also for a batch-lane task the live lane took over (map-reduce, on_expiry live).
    const model = pricing({ ...analysis, mode: "live" });
    if (provider.billed && model.note && !unpriced.has(model.model)) {
      unpriced.add(model.model);
      log.warn({ model: model.model }, model.note);
    }
    const started = performance.now();
    let result: Awaited<ReturnType<Provider["analyze"]>>;
    try {
      const chunks = ((task.document.chunks ?? []) as unknown as Chunk[]).map((c) => ({ index: c.index, text: c.text }));
      result = await provider.analyze({ ...analysisRequest(analysis, model, task.document.name, chunks), signal });
    } catch (err) {
      if (signal?.aborted) {
        // Aborted because the batch was cancelled or failed: the task did not run to an
        // answer, so it is handed back (and counted cancelled), not failed.
        await deliver({ type: "JOBS_WITHDRAWN", batchId, runId, kind: "analysis", ids: [taskId], dispatches: [dispatch] });
        return "aborted";
      }
      const latencyMs = Math.round(performance.now() - started);
      const error = err instanceof Error ? err.message : String(err);
      if (err instanceof AuthenticationError) {
        // Bad credentials fail every task alike: fail the batch once, clearly.
        log.error({ err }, "provider rejected the credentials");
        await deliver({ type: "FATAL_ERROR", batchId, runId, error: `${provider.name}: ${error}` });
      } else if ((err instanceof ProviderError ? err.retryable : true) && !isLastAttempt(job)) {
        // Worth another go later: BullMQ runs the job again after a backoff, and what this run
        // billed (answered re-asks, map-reduce steps) still counts for the task.
        if (err instanceof ProviderError && err.usage && err.usage.requests > 0) {
          await job.updateData({ ...job.data, spent: addUsage(job.data.spent ?? NO_USAGE, err.usage) });
        }
        throw err;
      }
      log.warn({ err }, "task failed");
      const spent = usageReport(addUsage(job.data.spent ?? NO_USAGE, err instanceof ProviderError && err.usage ? err.usage : NO_USAGE), model, provider.billed);
      onUsage?.({ provider: provider.name, model: model.model, ...spent });
      await hold(job, { type: "TASK_FAILED", batchId, runId, taskId, error, ...spent, latencyMs }, log);
      return "reported";
    }
    // Answered and paid for: from here on only the report may be repeated, never the call.
    const usage = usageReport(addUsage(job.data.spent ?? NO_USAGE, result), model, provider.billed);
    onUsage?.({ provider: result.provider, model: result.model, ...usage });
    await hold(
      job,
      {
        type: "TASK_COMPLETED",
        batchId,
        runId,
        taskId,
        output: result.output,
        ...usage,
        strategy: result.strategy,
        latencyMs: Math.round(performance.now() - started),
      },
      log,
    );
    return "reported";
  };

  /** What earlier runs of this job billed, in USD at the batch's price: the budget reserves it on top of the task's worst case. */
  async function spentSoFar(job: Job<AnalysisJob>): Promise<{ spentUsd?: number }> {
    const spent = job.data.spent;
    if (!spent || spent.requests === 0) return {};
    const batch = await untilSaved(() => prisma.batch.findUnique({ where: { id: job.data.batchId }, select: { analysis: true } }));
    const usd = batch ? costOf(spent, pricing(batch.analysis as unknown as BatchAnalysis).price) : null;
    return usd === null ? {} : { spentUsd: usd };
  }

  /**
   * Keeps a task's outcome in its job before reporting it, so that a run of the job after a
   * report that failed (or a crash) reports the same outcome instead of paying the provider again.
   */
  async function hold(job: Job<AnalysisJob>, outcome: TaskOutcome, log: Logger) {
    await job.updateData({ ...job.data, outcome }).catch((err: unknown) => log.warn({ err }, "could not keep the outcome in the job; reporting it anyway"));
    await reportOutcome(outcome, log);
  }

  /**
   * Delivers an outcome, trying again after any failure (a database outage is waited out by
   * `deliver` itself). When every try fails the job throws and BullMQ runs it again later: that run
   * finds the held outcome and reports it, without a call.
   */
  async function reportOutcome(outcome: TaskOutcome, log: Logger) {
    for (let attempt = 1; ; attempt++) {
      try {
        await deliver(outcome);
        return;
      } catch (err) {
        if (attempt >= reportAttempts) throw err;
        const delayMs = Math.min(reportBackoffMs * 2 ** (attempt - 1), 5_000);
        log.warn({ err, attempt, delayMs }, "reporting the task's outcome failed; trying again");
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }
}
