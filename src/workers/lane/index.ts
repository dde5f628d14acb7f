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
import type { LaneJob } from "../queues";
import { createLanePoller } from "./poller";
import { createLaneSubmitter, type LaneDeps } from "./submitter";

export type { LaneConfig, LaneDeps } from "./submitter";
export { ensurePollers, reconcileLane } from "./reconcile";

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
