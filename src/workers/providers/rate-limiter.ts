/**
 * A provider rate limit shared by every worker process: requests and tokens per minute, counted in
 * Redis so that N workers together stay under the account's limits instead of each using all of them.
 */
import type { Redis } from "ioredis";
import { ProviderError } from "./provider";
import { sleep } from "./retry";

/** Waits for room in the shared budget before each provider call. */
export interface RateLimiter {
  /**
   * Resolves once one request and `estimatedTokens` fit in the window, and takes them from it.
   * Rejects with a retryable `ProviderError` after `maxWaitMs`, or with the signal's reason when aborted.
   */
  acquire(estimatedTokens: number, signal?: AbortSignal): Promise<void>;
  /** Corrects the window once the real usage is known: adds `actualTokens - estimatedTokens`. */
  record(actualTokens: number, estimatedTokens?: number): Promise<void>;
}

export interface RateLimiterOptions {
  redis: Redis;
  /** Namespace of the limiter's key; limiters with the same prefix share one budget. */
  prefix: string;
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  /** Longest `acquire` waits before giving the job back to the queue. */
  maxWaitMs?: number;
  /** Length of the window; one minute except in tests, which cannot wait that long. */
  windowMs?: number;
}

/*
 * Sliding-window counter: the previous fixed window counts in proportion to how much of it still
 * overlaps the sliding one. Two numbers per limit instead of a log of every request, and Redis's
 * clock, so that workers on hosts with skewed clocks agree. Returns 0 when granted, else ms to wait.
 * ARGV: windowMs, requestLimit, tokenLimit (0 = none), requests, tokens, force (1 = record, never wait).
 */
const SCRIPT = `
local windowMs = tonumber(ARGV[1])
local requestLimit, tokenLimit = tonumber(ARGV[2]), tonumber(ARGV[3])
local requests, tokens, force = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = math.floor(now / windowMs)
local elapsed = (now % windowMs) / windowMs
local s = redis.call('HMGET', KEYS[1], 'w', 'rc', 'rp', 'tc', 'tp')
local w = tonumber(s[1]) or window
local rc, rp, tc, tp = tonumber(s[2]) or 0, tonumber(s[3]) or 0, tonumber(s[4]) or 0, tonumber(s[5]) or 0
if w == window - 1 then
  rp, tp, rc, tc = rc, tc, 0, 0
elseif w < window - 1 then
  rp, tp, rc, tc = 0, 0, 0, 0
end
local function waitFor(limit, cur, prev, need)
  if limit <= 0 then return 0 end
  need = math.min(need, limit)
  if prev * (1 - elapsed) + cur + need <= limit then return 0 end
  if cur + need <= limit and prev > 0 then
    return math.max(1, math.ceil((1 - (limit - cur - need) / prev - elapsed) * windowMs))
  end
  return math.max(1, math.ceil((1 - elapsed) * windowMs))
end
if not force then
  local wait = math.max(waitFor(requestLimit, rc, rp, requests), waitFor(tokenLimit, tc, tp, tokens))
  if wait > 0 then return wait end
end
redis.call('HSET', KEYS[1], 'w', window, 'rc', rc + requests, 'rp', rp, 'tc', math.max(0, tc + tokens), 'tp', tp)
redis.call('PEXPIRE', KEYS[1], windowMs * 2)
return 0
`;

const NO_LIMIT: RateLimiter = {
  acquire: async () => {},
  record: async () => {},
};

/** A limiter over `redis`; a no-op when neither limit is set. */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { redis, prefix, requestsPerMinute = 0, tokensPerMinute = 0, maxWaitMs = 120_000, windowMs = 60_000 } = options;
  if (requestsPerMinute <= 0 && tokensPerMinute <= 0) return NO_LIMIT;
  const key = `${prefix}:llm-rate`;
  const run = async (requests: number, tokens: number, force: boolean) =>
    Number(await redis.eval(SCRIPT, 1, key, windowMs, requestsPerMinute, tokensPerMinute, requests, Math.round(tokens), force ? 1 : 0));

  return {
    async acquire(estimatedTokens, signal) {
      const deadline = Date.now() + maxWaitMs;
      for (;;) {
        signal?.throwIfAborted();
        const waitMs = await run(1, Math.max(0, estimatedTokens), false);
        if (waitMs === 0) return;
        if (Date.now() + waitMs > deadline) {
          throw new ProviderError(`rate limit ${prefix}: no room within ${maxWaitMs} ms`, { retryable: true, retryAfterMs: waitMs });
        }
        // A little jitter so that the workers woken by the same window do not all ask at once.
        await sleep(waitMs + Math.floor(Math.random() * Math.min(waitMs, 50)), signal);
      }
    },
    async record(actualTokens, estimatedTokens = 0) {
      const delta = Math.round(actualTokens - estimatedTokens);
      if (delta !== 0 && tokensPerMinute > 0) await run(0, delta, true);
    },
  };
}
