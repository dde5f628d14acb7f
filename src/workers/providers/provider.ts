/**
 * The contract between the analysis worker and whichever LLM (or the offline analyzer) does the work,
 * and the errors by which a provider tells the worker whether trying again can help.
 */
import type { AnalysisStrategy } from "../../machines/batch.events";

/** One document's analysis, as the worker asks for it. */
export interface AnalysisRequest {
  instructions: string;
  /** JSON Schema the output must match; without it the output is plain text. */
  outputSchema?: Record<string, unknown>;
  /** The batch's own model, which overrides the provider's default. */
  model?: string;
  temperature?: number;
  maxTokens?: number;
  documentName: string;
  chunks: { index: number; text: string }[];
  /**
   * The model's context window in tokens, when known. A document whose prompt (with room for the
   * answer) does not fit is analysed map-reduce; without it every document is one request.
   */
  contextTokens?: number;
  /** The model's own ceiling on an answer, used to keep room for it when the batch sets no `maxTokens`. */
  maxOutputTokens?: number;
  /** Aborts the call in flight, e.g. when the job is cancelled. */
  signal?: AbortSignal;
}

/**
 * What the provider billed, summed over every answered request of one analysis (re-asks and
 * map-reduce steps included). `inputTokens` includes the cached and the cache-written ones.
 */
export interface ProviderUsage {
  /** Requests the provider answered (and billed); failed attempts are in `attempts`, not here. */
  requests: number;
  inputTokens: number;
  /** Input served from the provider's prompt cache (OpenAI `cached_tokens`, Anthropic `cache_read_input_tokens`). */
  cachedInputTokens: number;
  /** Input written to the prompt cache (Anthropic `cache_creation_input_tokens`), billed at its own rate. */
  cacheWriteTokens: number;
  outputTokens: number;
}

export const NO_USAGE: ProviderUsage = { requests: 0, inputTokens: 0, cachedInputTokens: 0, cacheWriteTokens: 0, outputTokens: 0 };

export function addUsage(a: ProviderUsage, b: ProviderUsage): ProviderUsage {
  return {
    requests: a.requests + b.requests,
    inputTokens: a.inputTokens + b.inputTokens,
    cachedInputTokens: a.cachedInputTokens + b.cachedInputTokens,
    cacheWriteTokens: a.cacheWriteTokens + b.cacheWriteTokens,
    outputTokens: a.outputTokens + b.outputTokens,
  };
}

/** What the provider answered and what it cost. Usage and attempts add up every HTTP call made. */
export interface AnalysisResult extends ProviderUsage {
  output: unknown;
  /** HTTP calls made, failed ones included. */
  attempts: number;
  model: string;
  provider: string;
  /** One request for the whole document, or map-reduce over groups of its chunks. */
  strategy: AnalysisStrategy;
}

/** An LLM provider (or the offline analyzer). */
export interface Provider {
  readonly name: string;
  /** The model used when a request names none. */
  readonly model: string;
  /** False for the offline analyzer, which nobody bills. */
  readonly billed: boolean;
  analyze(req: AnalysisRequest): Promise<AnalysisResult>;
}

/** Facts about a failure the worker uses to decide what happens next. */
export interface ProviderErrorDetails {
  /** Whether the same request may succeed later (rate limits, 5xx, timeouts, lost connections). */
  retryable: boolean;
  /** HTTP status of the provider's answer, when there was one. */
  status?: number;
  /** How long the provider asked us to wait before trying again. */
  retryAfterMs?: number;
  cause?: unknown;
}

/** Base of every provider failure. A retryable one left after our own retries may be retried by the queue. */
export class ProviderError extends Error {
  readonly retryable: boolean;
  readonly status?: number;
  readonly retryAfterMs?: number;
  /** What the analysis had spent when it failed (answered re-asks, map steps); set by the conversation. */
  usage?: ProviderUsage;

  constructor(message: string, details: ProviderErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.retryable = details.retryable;
    if (details.status !== undefined) this.status = details.status;
    if (details.retryAfterMs !== undefined) this.retryAfterMs = details.retryAfterMs;
  }
}

/** 401/403: the credentials are wrong, so every other task of the batch would fail the same way. */
export class AuthenticationError extends ProviderError {
  constructor(message: string, status: number, cause?: unknown) {
    super(message, { retryable: false, status, cause });
  }
}

/** The provider refused this request for good (400, 404, 422…): sending it again cannot help. */
export class PermanentProviderError extends ProviderError {
  constructor(message: string, status?: number, cause?: unknown) {
    super(message, { retryable: false, ...(status === undefined ? {} : { status }), cause });
  }
}

/** The model kept answering something that is not JSON or does not match the schema, re-asks included. */
export class InvalidOutputError extends ProviderError {
  constructor(
    message: string,
    /** The last answer, kept so the failure can be inspected. */
    readonly lastOutput: string,
    /** What was wrong with it. */
    readonly problems: string[],
  ) {
    super(message, { retryable: false });
  }
}
