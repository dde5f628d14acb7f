/**
 * Anthropic's Message Batches over the official SDK: one `messages.batches.create` with a
 * `custom_id` per request, results streamed by `results()` once the batch has ended. The system
 * prompt is marked for the prompt cache, as in the live lane.
 */
import Anthropic from "@anthropic-ai/sdk";
import type { MessageBatch, MessageBatchIndividualResponse } from "@anthropic-ai/sdk/resources/messages/batches";
import type { BatchClient, BatchLimits, BatchRequestLine, LineResult, ProviderBatch } from "./lane";

/** Anthropic's documented ceilings for one message batch. */
export const ANTHROPIC_BATCH_LIMITS: BatchLimits = { maxRequests: 100_000, maxBytes: 256 * 1024 * 1024 };

/** The messages API requires a ceiling on the answer; the live lane uses the same one. */
const DEFAULT_MAX_TOKENS = 4096;

/** Error types after which the same request may well succeed in another batch. */
const RETRYABLE_ERRORS = new Set(["rate_limit_error", "api_error", "overloaded_error", "timeout_error"]);

export interface AnthropicBatchOptions {
  apiKey?: string;
  baseURL?: string;
  timeoutMs: number;
  limits?: BatchLimits;
}

export function createAnthropicBatchClient(opts: AnthropicBatchOptions): BatchClient {
  const client = new Anthropic({
    ...(opts.apiKey !== undefined && { apiKey: opts.apiKey }),
    ...(opts.baseURL !== undefined && { baseURL: opts.baseURL }),
    maxRetries: 2,
    timeout: opts.timeoutMs,
  });
  const limits = opts.limits ?? ANTHROPIC_BATCH_LIMITS;

  return {
    kind: "anthropic",
    limits,
    lineBytes: (line) => Buffer.byteLength(JSON.stringify(request(line))) + 1,
    async submit(lines, metadata) {
      // Never retried by the SDK: a create that reached the provider but lost its answer would be paid twice.
      // The lane looks for it (`find`) before it submits again.
      return normalise(await client.messages.batches.create({ requests: lines.map(request) }, { maxRetries: 0 }), metadata);
    },
    retrieve: async (id) => normalise(await client.messages.batches.retrieve(id)),
    cancel: async (id) => normalise(await client.messages.batches.cancel(id)),
    async find(query) {
      const found: ProviderBatch[] = [];
      // Listed newest first; a batch of the same size created since the submission began is the candidate.
      for await (const batch of client.messages.batches.list({ limit: 100 })) {
        const normalised = normalise(batch);
        if (normalised.createdAt.getTime() < query.since.getTime()) break;
        if (normalised.counts.total === query.total) found.push(normalised);
      }
      return found;
    },
    async *results(id) {
      for await (const line of await client.messages.batches.results(id)) yield parseResult(line);
    },
  };
}

function request(line: BatchRequestLine) {
  return {
    custom_id: line.customId,
    params: {
      model: line.model,
      system: [{ type: "text" as const, text: line.system, cache_control: { type: "ephemeral" as const } }],
      messages: [{ role: "user" as const, content: line.user }],
      max_tokens: line.maxTokens ?? DEFAULT_MAX_TOKENS,
    },
  };
}

function normalise(batch: MessageBatch, metadata: Record<string, string> = {}): ProviderBatch {
  const c = batch.request_counts;
  return {
    id: batch.id,
    status: batch.processing_status === "canceling" ? "cancelling" : batch.processing_status,
    providerStatus: batch.processing_status,
    counts: {
      total: c.processing + c.succeeded + c.errored + c.canceled + c.expired,
      succeeded: c.succeeded,
      failed: c.errored + c.canceled + c.expired,
    },
    createdAt: new Date(batch.created_at),
    expiresAt: batch.expires_at ? new Date(batch.expires_at) : null,
    errors: [],
    metadata,
  };
}

export function parseResult(line: MessageBatchIndividualResponse): LineResult {
  const customId = line.custom_id;
  const result = line.result;
  switch (result.type) {
    case "succeeded": {
      const message = result.message;
      const usage = message.usage;
      const cacheRead = usage.cache_read_input_tokens ?? 0;
      return {
        customId,
        kind: "succeeded",
        text: message.content.flatMap((block) => (block.type === "text" ? [block.text] : [])).join(""),
        model: message.model,
        // As in the live lane: every prompt token, the cached and cache-written ones included.
        usage: { inputTokens: usage.input_tokens + cacheRead + (usage.cache_creation_input_tokens ?? 0), cachedInputTokens: cacheRead, outputTokens: usage.output_tokens },
      };
    }
    case "errored": {
      const error = result.error.error;
      return { customId, kind: "errored", message: `anthropic batch: ${error.message}`, retryable: RETRYABLE_ERRORS.has(error.type) };
    }
    case "expired":
      return { customId, kind: "expired" };
    case "canceled":
      return { customId, kind: "cancelled" };
  }
}
