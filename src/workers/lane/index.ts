/**
 * The provider batch lane (`analysis.mode: "batch"`): the processor of the `provider-batches`
 * queue, the batch API client a batch's analysis uses, and what the reconciler checks for lane
 * batches (a submitter for tasks no provider batch carries yet, a poller for each open provider
 * batch, a live job for a task the live lane took over).
 */
import type { Job } from "bullmq";
import type { ProviderKind } from "../../vocabulary";
import type { BatchAnalysis } from "../analysis.worker";
import { createAnthropicBatchClient } from "../providers/batch/anthropic-batches";
import type { BatchClient } from "../providers/batch/lane";
import { createOpenAIBatchClient } from "../providers/batch/openai-batches";
import { jobIds, LANE_SUBMIT_OPTIONS, type LaneJob } from "../queues";
import { createLanePoller } from "./poller";
import { createLaneSubmitter, type LaneDeps } from "./submitter";

export type { LaneConfig, LaneDeps } from "./submitter";

/** The credentials and endpoints the batch clients use; the same variables as the live lane's. */
export interface LaneProviderConfig {
  LLM_PROVIDER?: ProviderKind;
  OPENAI_API_KEY?: string;
  OPENAI_BASE_URL?: string;
  ANTHROPIC_API_KEY?: string;
  ANTHROPIC_BASE_URL?: string;
  LLM_TIMEOUT_MS: number;
}

/** One client per provider, made when a batch first needs it. */
export function batchClients(config: LaneProviderConfig): LaneDeps["clientFor"] {
  const clients = new Map<string, BatchClient>();
  return (analysis: BatchAnalysis) => {
    const kind = analysis.provider ?? config.LLM_PROVIDER ?? (config.OPENAI_API_KEY || config.OPENAI_BASE_URL ? "openai" : "local");
    if (kind === "local") return null;
    let client = clients.get(kind);
    if (!client) {
      const timeoutMs = Math.max(config.LLM_TIMEOUT_MS, 120_000);
      client =
        kind === "openai"
          ? createOpenAIBatchClient({ timeoutMs, ...(config.OPENAI_API_KEY && { apiKey: config.OPENAI_API_KEY }), ...(config.OPENAI_BASE_URL && { baseURL: config.OPENAI_BASE_URL }) })
          : createAnthropicBatchClient({ timeoutMs, ...(config.ANTHROPIC_API_KEY && { apiKey: config.ANTHROPIC_API_KEY }), ...(config.ANTHROPIC_BASE_URL && { baseURL: config.ANTHROPIC_BASE_URL }) });
      clients.set(kind, client);
    }
    return { kind, client };
  };
}

export function createLaneProcessor(deps: LaneDeps) {
  const submitter = createLaneSubmitter(deps);
  const poller = createLanePoller(deps);
  return (job: Job<LaneJob>, token?: string): Promise<string> => (job.data.kind === "submit" ? submitter.run(job.data) : poller.run(job, token));
}

/** Job states that mean the job will still run (or is running). */
const ALIVE = new Set(["active", "waiting", "delayed", "prioritized", "waiting-children", "wait"]);

/**
 * A poller for every provider batch the provider knows and that has not ended, whatever its
 * batch's state (a paused batch's provider batches are cancelled and harvested by theirs).
 */
export async function ensurePollers(deps: Pick<LaneDeps, "prisma" | "queues">): Promise<number> {
  const { prisma, queues } = deps;
  let added = 0;
  const parts = await prisma.providerBatch.findMany({
    where: { status: { notIn: ["ended", "failed", "submitting"] }, providerId: { not: null } },
    select: { id: true, batchId: true, runId: true },
  });
  for (const p of parts) {
    const jobId = jobIds.lanePoll(p.id);
    if (ALIVE.has(await queues.lane.getJobState(jobId))) continue;
    // A finished poller's job is kept a while; it must make room for the new one.
    await queues.lane.remove(jobId);
    await queues.lane.add("poll", { kind: "poll", batchId: p.batchId, runId: p.runId, providerBatchId: p.id }, { jobId });
    added++;
  }
  return added;
}

/**
 * What a running lane batch needs besides its pollers: a submitter while tasks wait for a provider
 * batch (or one was recorded but not submitted). Returns whether it added one, and the tasks whose
 * provider batch ended and handed them to the live lane, which need a live job like any other.
 */
export async function reconcileLane(
  deps: Pick<LaneDeps, "prisma" | "queues">,
  batchId: string,
  runId: number,
): Promise<{ added: number; live: { id: string; dispatches: number }[] }> {
  const { prisma, queues } = deps;
  let added = 0;
  const open = await prisma.providerBatch.findMany({ where: { batchId, runId, status: { notIn: ["ended", "failed"] } }, select: { id: true, providerId: true } });
  const waiting = await prisma.task.count({ where: { batchId, runId, status: "running", providerBatchId: null } });
  if (waiting > 0 || open.some((p) => !p.providerId)) {
    const data = { kind: "submit" as const, batchId, runId };
    const jobId = jobIds.laneSubmit({ ...data, key: "reconcile" });
    if (!ALIVE.has(await queues.lane.getJobState(jobId))) {
      await queues.lane.add("submit", data, { jobId, ...LANE_SUBMIT_OPTIONS });
      added++;
    }
  }
  return {
    added,
    live: await prisma.task.findMany({
      where: { batchId, runId, status: "running", providerBatchId: { not: null }, NOT: { providerBatchId: { in: open.map((p) => p.id) } } },
      select: { id: true, dispatches: true },
    }),
  };
}
