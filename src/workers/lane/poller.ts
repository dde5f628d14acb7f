/**
 * The batch lane's poller: one job per provider batch (its id is the provider batch's), which looks
 * at the provider batch, records what changed, waits (longer while nothing changes) and looks again
 * until it ends. Then each result line becomes the report the live lane sends — `TASK_COMPLETED` or
 * `TASK_FAILED` through the inbox, so a line read twice counts once — and lines the provider did not
 * answer (expired, cancelled, or failed in a way worth retrying) go back to the run or fail, as the
 * batch's `on_expiry` says.
 *
 * A batch that is no longer analysing (paused by a user, cancelled, failed) has its open provider
 * batches cancelled here: what they finished is kept and counted, the rest goes back.
 */
import { DelayedError, type Job } from "bullmq";
import type { BatchService } from "../../batch-service";
import type { Logger } from "../../logger";
import { costOf } from "../../pricing";
import type { BatchProviderKind, ProviderBatchStatus } from "../../vocabulary";
import type { BatchAnalysis } from "../analysis.worker";
import type { BatchClient, LineResult, ProviderBatch } from "../providers/batch/lane";
import { AnswerCheckError, sharedAnswerChecker } from "../answer-check";
import { jobIds, LANE_SUBMIT_OPTIONS, type LaneJob } from "../queues";
import { classifyBatchError } from "./errors";
import type { LaneConfig, LaneDeps } from "./submitter";

type PollJob = Extract<LaneJob, { kind: "poll" }>;

/**
 * Whether the batch's open provider batches are to be cancelled: it was paused by a user, cancelled
 * or failed. A pause by the budget lets them finish: their tasks were started within the budget.
 */
const stopped = (b: { status: string; pauseReason: string | null }) => b.status !== "ANALYZING" && !(b.status === "PAUSED" && b.pauseReason === "budget");

const FINAL: ProviderBatchStatus[] = ["ended", "failed"];

/** Result lines checked and reported at once. */
const REPORT_SLICE = 200;

export function createLanePoller(deps: LaneDeps) {
  const { prisma, service, queues, logger, availability, pricing, config } = deps;
  const { untilSaved } = availability;
  const report = (r: Parameters<BatchService["report"]>[0]) => untilSaved(() => service.report(r));
  const deliver = (r: Parameters<BatchService["deliver"]>[0]) => untilSaved(() => service.deliver(r));

  async function run(job: Job<LaneJob>, token: string | undefined): Promise<string> {
    const data = job.data as PollJob;
    const { batchId, runId, providerBatchId } = data;
    const log = logger.child({ batchId, providerBatchId, component: "lane-poll" });
    const part = await untilSaved(() => prisma.providerBatch.findUnique({ where: { id: providerBatchId } }));
    if (!part || FINAL.includes(part.status as ProviderBatchStatus)) return "done";
    if (!part.providerId) return "not submitted yet";
    const batch = await untilSaved(() => prisma.batch.findUnique({ where: { id: batchId }, select: { status: true, pauseReason: true, analysis: true } }));
    if (!batch) return "batch deleted";
    const analysis = batch.analysis as unknown as BatchAnalysis;
    const lane = deps.clientFor(analysis);
    if (!lane) return "no batch API";

    let seen: ProviderBatch;
    try {
      seen = await lane.client.retrieve(part.providerId);
      if (stopped(batch) && seen.status !== "cancelling" && !FINAL.includes(seen.status)) {
        log.info({ status: batch.status }, "the batch stopped analysing: cancelling its provider batch");
        seen = await lane.client.cancel(part.providerId);
      }
    } catch (err) {
      throw classifyBatchError(lane.kind, err);
    }
    const changed =
      seen.status !== part.status || JSON.stringify(seen.counts) !== JSON.stringify(part.requestCounts ?? null);
    if (seen.status === "ended") await settle(lane.client, seen, { batchId, runId, providerBatchId }, analysis, lane.kind, stopped(batch), log);
    if (seen.status === "failed") await failAll({ batchId, runId, providerBatchId }, seen.errors);
    if (changed || FINAL.includes(seen.status)) {
      await report({
        type: "PROVIDER_BATCH_UPDATED",
        batchId,
        runId,
        providerBatchId,
        status: seen.status,
        providerStatus: seen.providerStatus,
        requestCounts: seen.counts,
        ...(seen.expiresAt && { expiresAt: seen.expiresAt.toISOString() }),
        ...(seen.errors.length && { errors: seen.errors }),
      });
    }
    if (FINAL.includes(seen.status)) {
      // A slot is free: tasks of the run still waiting for a provider batch go now.
      const next = { kind: "submit" as const, batchId, runId };
      await queues.lane.add("submit", next, { jobId: jobIds.laneSubmit({ ...next, key: `after-${providerBatchId}` }), ...LANE_SUBMIT_OPTIONS });
      return seen.status;
    }
    const interval = changed ? config.LANE_POLL_MS : Math.min(config.LANE_POLL_MAX_MS, (data.intervalMs ?? config.LANE_POLL_MS) * 2);
    await job.updateData({ ...data, intervalMs: interval });
    await job.moveToDelayed(Date.now() + interval, token);
    throw new DelayedError();
  }

  /** Reports every task of an ended provider batch once: its line's answer, or what its absence means. */
  async function settle(
    client: BatchClient,
    seen: ProviderBatch,
    ids: { batchId: string; runId: number; providerBatchId: string },
    analysis: BatchAnalysis,
    kind: BatchProviderKind,
    stopped: boolean,
    log: Logger,
  ) {
    const { batchId, runId, providerBatchId } = ids;
    const model = pricing(analysis);
    const tasks = await prisma.task.findMany({ where: { providerBatchId, status: "running" }, select: { id: true, dispatches: true } });
    const open = new Map(tasks.map((t) => [t.id, t]));
    const unanswered: string[] = [];
    // Lines are checked and reported a slice at a time, the slice's reports sharing inbox writes.
    let slice: Promise<void>[] = [];
    const report = async (line: LineResult) => {
      if (line.kind === "succeeded") {
        const usage = { requests: 1, inputTokens: line.usage.inputTokens, cachedInputTokens: line.usage.cachedInputTokens, outputTokens: line.usage.outputTokens };
        const common = { batchId, runId, taskId: line.customId, ...usage, costUsd: costOf(usage, model.price), strategy: "single" as const };
        const checked = await checkLine(line.text, analysis.output_schema);
        if ("value" in checked) await deliver({ type: "TASK_COMPLETED", ...common, output: checked.value });
        else await deliver({ type: "TASK_FAILED", ...common, error: checked.error });
      } else if (line.kind === "errored" && !line.retryable) {
        await deliver({ type: "TASK_FAILED", batchId, runId, taskId: line.customId, error: line.message });
      } else {
        unanswered.push(line.customId);
      }
    };
    try {
      for await (const line of client.results(seen.id)) {
        if (!open.delete(line.customId)) continue;
        slice.push(report(line));
        if (slice.length >= REPORT_SLICE) {
          await Promise.all(slice);
          slice = [];
        }
      }
      await Promise.all(slice);
    } catch (err) {
      throw classifyBatchError(kind, err);
    }
    // A task with no line at all was not answered either.
    unanswered.push(...open.keys());
    if (!unanswered.length) return;
    // Cancelled because the batch paused or stopped: back to the run, whatever the expiry policy.
    if (stopped) await deliver({ type: "JOBS_WITHDRAWN", batchId, runId, kind: "analysis", ids: unanswered, providerBatchId });
    else await handBack(ids, unanswered, analysis, log);
  }

  /** A line's answer, parsed and validated off the main thread as the live lane does; the batch lane has no re-asks. */
  async function checkLine(text: string, schema: Record<string, unknown> | undefined): Promise<{ value: unknown } | { error: string }> {
    if (schema === undefined) return { value: text };
    try {
      const checked = await sharedAnswerChecker().check(schema, text);
      if (checked.ok) return { value: checked.value };
      return { error: "problems" in checked ? `output does not match the schema: ${checked.problems.join("; ")}` : `output schema cannot be compiled: ${checked.schemaError}` };
    } catch (err) {
      if (err instanceof AnswerCheckError) return { error: err.message };
      throw err;
    }
  }

  /** Lines the provider did not answer: sent again (the machine dispatches them anew), sent live, or failed. */
  async function handBack(ids: { batchId: string; runId: number; providerBatchId: string }, taskIds: string[], analysis: BatchAnalysis, log: Logger) {
    const { batchId, runId, providerBatchId } = ids;
    const policy = analysis.on_expiry ?? "resubmit";
    const tasks = await prisma.task.findMany({ where: { id: { in: taskIds } }, select: { id: true, dispatches: true } });
    const worn = tasks.filter((t) => t.dispatches >= config.LANE_MAX_SUBMISSIONS);
    const rest = tasks.filter((t) => t.dispatches < config.LANE_MAX_SUBMISSIONS);
    log.info({ unanswered: tasks.length, policy }, "provider batch ended with unanswered lines");
    const fail = policy === "fail" ? tasks : worn;
    for (const t of fail) {
      const error = policy === "fail" ? "the provider batch ended without answering it (on_expiry: fail)" : `the provider batch ended without answering it ${t.dispatches} times`;
      await deliver({ type: "TASK_FAILED", batchId, runId, taskId: t.id, error });
    }
    if (policy === "fail" || !rest.length) return;
    if (policy === "live") {
      await queues.analysis.addBulk(
        rest.map((t) => {
          const data = { batchId, runId, taskId: t.id, dispatch: t.dispatches };
          return { name: "analyse", data, opts: { jobId: jobIds.analysis(data) } };
        }),
      );
      return;
    }
    await deliver({ type: "JOBS_WITHDRAWN", batchId, runId, kind: "analysis", ids: rest.map((t) => t.id), providerBatchId });
  }

  async function failAll(ids: { batchId: string; runId: number; providerBatchId: string }, errors: string[]) {
    const tasks = await prisma.task.findMany({ where: { providerBatchId: ids.providerBatchId, status: "running" }, select: { id: true } });
    const error = `the provider refused the provider batch: ${errors.join("; ") || "no reason given"}`;
    for (const t of tasks) await deliver({ type: "TASK_FAILED", batchId: ids.batchId, runId: ids.runId, taskId: t.id, error });
  }

  return { run };
}

export type { LaneConfig };
