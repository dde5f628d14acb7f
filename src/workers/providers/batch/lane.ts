/**
 * The provider batch lane's contract: what Tranche submits to a provider's batch API (OpenAI Batch API,
 * Anthropic Message Batches), what it reads back, and how a run is split to fit the provider's limits.
 * Each SDK-backed client turns these into its own wire format; nothing here knows an SDK.
 */
import type { BatchProviderKind, ProviderBatchStatus } from "../../../vocabulary";

/** One request of a provider batch; `customId` is the task id, so each result line names its task. */
export interface BatchRequestLine {
  customId: string;
  model: string;
  system: string;
  user: string;
  schema?: Record<string, unknown>;
  temperature?: number;
  maxTokens?: number;
}

/** Where a provider batch is, as the provider reports it (`submitting` is ours, before the provider knows it). */
export type ReportedStatus = Exclude<ProviderBatchStatus, "submitting">;

/** Statuses after which the provider changes nothing more and the results (if any) can be read. */
export const SETTLED_PROVIDER_BATCH_STATUSES: readonly ProviderBatchStatus[] = ["ended", "failed"];

export interface RequestCounts {
  total: number;
  /** Lines answered successfully. */
  succeeded: number;
  /** Lines answered with an error, expired or cancelled. */
  failed: number;
}

/** What the provider says of one batch. */
export interface ProviderBatch {
  id: string;
  status: ReportedStatus;
  /** The provider's own word for it (`completed`, `expired`, `canceling`…), for display and logs. */
  providerStatus: string;
  counts: RequestCounts;
  createdAt: Date;
  expiresAt: Date | null;
  /** Why the provider refused the whole batch (validation), when it did. */
  errors: string[];
  /** What we attached at creation (OpenAI keeps it; Anthropic has no metadata). */
  metadata: Record<string, string>;
}

export interface LineUsage {
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
}

/** One line of a settled batch's results. */
export type LineResult =
  | { customId: string; kind: "succeeded"; text: string; model: string; usage: LineUsage }
  /** The provider answered this request with an error; `retryable` as for a live call with that status. */
  | { customId: string; kind: "errored"; message: string; status?: number; retryable: boolean }
  /** The provider gave up on the line before answering it (the 24 h window ran out). */
  | { customId: string; kind: "expired" }
  /** The batch was cancelled before the line was answered. */
  | { customId: string; kind: "cancelled" };

/** The most one provider batch may carry. */
export interface BatchLimits {
  maxRequests: number;
  maxBytes: number;
}

/** A provider's batch API, as the lane uses it. */
export interface BatchClient {
  readonly kind: BatchProviderKind;
  readonly limits: BatchLimits;
  /** The bytes one line takes in the provider's upload, to split a run under `limits.maxBytes`. */
  lineBytes(line: BatchRequestLine): number;
  /** Submits the lines as one provider batch; `metadata` names the Tranche batch, run and part. */
  submit(lines: BatchRequestLine[], metadata: Record<string, string>): Promise<ProviderBatch>;
  retrieve(id: string): Promise<ProviderBatch>;
  cancel(id: string): Promise<ProviderBatch>;
  /**
   * Provider batches created at or after `since` that may be the submission described: how one that
   * crashed before it was recorded is found instead of paid for twice. OpenAI matches `metadata`
   * (every key equal); Anthropic keeps no metadata, so it matches the line count instead.
   */
  find(query: { metadata: Record<string, string>; since: Date; total: number }): Promise<ProviderBatch[]>;
  /** The result lines of a settled batch, streamed. */
  results(id: string): AsyncIterable<LineResult>;
}

/**
 * Consecutive parts of `lines`, each within the client's limits. A line that alone exceeds the byte
 * limit cannot be sent in any batch; it is returned in `oversize` for the caller to fail or send live.
 */
export function splitIntoParts(
  lines: BatchRequestLine[],
  limits: BatchLimits,
  lineBytes: (line: BatchRequestLine) => number,
): { parts: BatchRequestLine[][]; oversize: BatchRequestLine[] } {
  const parts: BatchRequestLine[][] = [];
  const oversize: BatchRequestLine[] = [];
  let current: BatchRequestLine[] = [];
  let bytes = 0;
  for (const line of lines) {
    const size = lineBytes(line);
    if (size > limits.maxBytes) {
      oversize.push(line);
      continue;
    }
    if (current.length > 0 && (current.length >= limits.maxRequests || bytes + size > limits.maxBytes)) {
      parts.push(current);
      current = [];
      bytes = 0;
    }
    current.push(line);
    bytes += size;
  }
  if (current.length > 0) parts.push(current);
  return { parts, oversize };
}
