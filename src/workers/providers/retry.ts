/**
 * Our retry policy for LLM calls, shared by every SDK-backed provider. The SDKs' own retries are off
 * so that what is retried, how long we wait and what gets logged is decided (and tested) here.
 */
import type { Logger } from "pino";
import { AuthenticationError, PermanentProviderError, ProviderError } from "./provider";

/** How hard to try. Delays use exponential backoff with full jitter unless the provider names one. */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  maxRetries: number;
  /** First backoff ceiling; doubles each retry. */
  baseDelayMs: number;
  /** Highest backoff ceiling. */
  maxDelayMs: number;
  /**
   * Longest `Retry-After` we sit through. A longer one ends our retries at once so that the job
   * queue, not a busy worker slot, does the waiting.
   */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: Omit<RetryPolicy, "maxRetries"> = {
  baseDelayMs: 250,
  maxDelayMs: 20_000,
  maxRetryAfterMs: 60_000,
};

/** Full jitter: a uniform delay below `base · 2^retry`, capped, so that many workers do not retry in step. */
export function backoffDelay(retry: number, policy: Pick<RetryPolicy, "baseDelayMs" | "maxDelayMs">, random = Math.random): number {
  return Math.floor(random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry));
}

/** The wait a response asks for: `retry-after-ms` (OpenAI's), else `Retry-After` in seconds or as an HTTP date. */
export function parseRetryAfter(headers: Headers | undefined, now = Date.now()): number | undefined {
  const ms = Number.parseFloat(headers?.get("retry-after-ms") ?? "");
  if (Number.isFinite(ms) && ms >= 0) return Math.ceil(ms);
  const value = headers?.get("retry-after")?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.ceil(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Maps an HTTP failure to our errors: 408/409/429/5xx may pass, 401/403 are fatal, the rest permanent. */
export function httpFailure(status: number, headers: Headers | undefined, message: string, cause?: unknown): ProviderError {
  if (status === 401 || status === 403) return new AuthenticationError(message, status, cause);
  if (status === 408 || status === 409 || status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(headers);
    return new ProviderError(message, { retryable: true, status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }), cause });
  }
  return new PermanentProviderError(message, status, cause);
}

/** A request that got no HTTP answer (refused, reset, timed out) may well succeed next time. */
export function connectionFailure(message: string, cause?: unknown): ProviderError {
  return new ProviderError(message, { retryable: true, cause });
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export interface RetryOptions {
  policy: RetryPolicy;
  /** Cancels the waits between attempts. */
  signal?: AbortSignal;
  logger: Logger;
  /** Runs before every attempt, outside the retry loop: what it throws ends the retries (e.g. the rate limiter giving up). */
  beforeAttempt?: () => Promise<void>;
}

/**
 * Runs `attempt` until it succeeds, fails with a non-retryable error, or the retries are spent.
 * `attempt` must throw `ProviderError`s; anything else is passed through untouched.
 * Resolves with the value and the number of attempts made.
 */
export async function withRetries<T>(attempt: () => Promise<T>, options: RetryOptions): Promise<{ value: T; attempts: number }> {
  const { policy, signal, logger, beforeAttempt } = options;
  for (let retry = 0; ; retry++) {
    await beforeAttempt?.();
    try {
      return { value: await attempt(), attempts: retry + 1 };
    } catch (err) {
      if (!(err instanceof ProviderError) || !err.retryable || retry >= policy.maxRetries) throw err;
      if (err.retryAfterMs !== undefined && err.retryAfterMs > policy.maxRetryAfterMs) throw err;
      const delayMs = err.retryAfterMs ?? backoffDelay(retry, policy);
      logger.warn({ attempt: retry + 1, status: err.status, delayMs, err: err.message }, "provider call failed; retrying");
      await sleep(delayMs, signal);
    }
  }
}
