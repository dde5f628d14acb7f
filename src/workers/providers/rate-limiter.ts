/**
 * A provider rate limit shared by every worker process: requests and tokens per minute, kept in
 * Redis so that N workers together use the account's limits fully but not more. The limits are the
 * configured ones, or, when none are configured, the ones the provider's own headers announce.
 */
import type { Redis } from "ioredis";
import { ProviderError } from "./provider";
import type { RateObservation } from "./rate-headers";
import { sleep } from "./retry";

/** Waits for room in the shared budget before each provider call. */
export interface RateLimiter {
  /**
   * Resolves once one request and `estimatedTokens` fit, and takes them.
   * Rejects with a retryable `ProviderError` after `maxWaitMs`, or with the signal's reason when aborted.
   */
  acquire(estimatedTokens: number, signal?: AbortSignal): Promise<void>;
  /**
   * Corrects the budget once the call is over: takes `actualTokens - estimatedTokens` (a refund when
   * negative), and takes in what the provider's headers said (limits, what remains, Retry-After).
   */
  record(actualTokens: number, estimatedTokens?: number, observed?: RateObservation): Promise<void>;
}

export interface RateLimiterOptions {
  redis: Redis;
  /** Namespace of the limiter's key; limiters with the same prefix share one budget. */
  prefix: string;
  /** Configured limits win over what the provider's headers announce. */
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  /** Longest `acquire` waits before giving the job back to the queue. */
  maxWaitMs?: number;
  /** Length of the window; one minute except in tests, which cannot wait that long. */
  windowMs?: number;
  /**
   * The most a bucket holds, as time at the limit's rate: a whole window (the default) lets a burst use a
   * minute's allowance at once; less keeps under a provider that also enforces shorter periods.
   */
  burstMs?: number;
}

/*
 * Two token buckets (requests, tokens), each holding at most `burstMs` worth of its limit (by
 * default a whole window's) and refilled at limit/window continuously: the model both OpenAI and Anthropic describe for their limits, so a
 * bucket that is never overdrawn is never refused. A call larger than the whole bucket waits for a
 * full bucket and overdraws it (the long-run rate still holds). Redis's clock, so that workers on
 * hosts with skewed clocks agree. Nothing is written while no limit is known and nothing blocks.
 *
 * ARGV: mode ('acquire' | 'record'), windowMs, burstMs, configured request/token limits (0 = none),
 *       requests, tokens (record: the correction), then for record: announced limits, remaining
 *       (-1 = not said), and ms to block everyone for (Retry-After).
 * Returns 0 when granted (or recorded), else the ms to wait.
 */
const SCRIPT = `
local mode, windowMs, burst = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]) / tonumber(ARGV[2])
local cfgR, cfgT = tonumber(ARGV[4]), tonumber(ARGV[5])
local reqs, toks = tonumber(ARGV[6]), tonumber(ARGV[7])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'rl', 'tl', 'r', 't', 'ts', 'until')
local rl = cfgR > 0 and cfgR or (tonumber(h[1]) or 0)
local tl = cfgT > 0 and cfgT or (tonumber(h[2]) or 0)
local ts = tonumber(h[5]) or now
local blocked = tonumber(h[6]) or 0
local elapsed = math.max(0, now - ts)
local r, tk = tonumber(h[3]), tonumber(h[4])
if r == nil then r = rl * burst else r = math.min(rl * burst, r + elapsed * rl / windowMs) end
if tk == nil then tk = tl * burst else tk = math.min(tl * burst, tk + elapsed * tl / windowMs) end
if mode == 'acquire' then
  if blocked > now then return blocked - now end
  local wait = 0
  if rl > 0 then
    local need = math.min(reqs, rl * burst)
    if r < need then wait = math.max(wait, math.ceil((need - r) * windowMs / rl)) end
  end
  if tl > 0 then
    local need = math.min(toks, tl * burst)
    if tk < need then wait = math.max(wait, math.ceil((need - tk) * windowMs / tl)) end
  end
  if wait > 0 then return wait end
  if rl == 0 and tl == 0 then return 0 end
  r, tk = r - reqs, tk - toks
else
  local annR, annT = tonumber(ARGV[8]), tonumber(ARGV[9])
  local remR, remT, block = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
  if cfgR == 0 and annR > 0 then
    if rl == 0 then r = annR * burst end
    rl = annR
  end
  if cfgT == 0 and annT > 0 then
    if tl == 0 then tk = annT * burst end
    tl = annT
  end
  tk = math.min(tl * burst, tk - toks)
  if remR >= 0 and rl > 0 then r = math.min(r, remR) end
  if remT >= 0 and tl > 0 then tk = math.min(tk, remT) end
  if block > 0 then blocked = math.max(blocked, now + block) end
  if rl == 0 and tl == 0 and blocked <= now then return 0 end
end
redis.call('HSET', KEYS[1], 'rl', rl, 'tl', tl, 'r', r, 't', tk, 'ts', now, 'until', blocked)
redis.call('PEXPIRE', KEYS[1], math.max(windowMs * 2, blocked - now + windowMs))
return 0
`;

/** A limiter over `redis`, shared by every limiter with the same prefix. */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { redis, prefix, requestsPerMinute = 0, tokensPerMinute = 0, maxWaitMs = 120_000, windowMs = 60_000 } = options;
  const burstMs = Math.min(windowMs, options.burstMs ?? windowMs);
  const key = `${prefix}:llm-rate`;
  const limits = [windowMs, burstMs, requestsPerMinute, tokensPerMinute] as const;

  return {
    async acquire(estimatedTokens, signal) {
      const deadline = Date.now() + maxWaitMs;
      for (;;) {
        signal?.throwIfAborted();
        const waitMs = Number(await redis.eval(SCRIPT, 1, key, "acquire", ...limits, 1, Math.max(0, Math.round(estimatedTokens))));
        if (waitMs === 0) return;
        if (Date.now() + waitMs > deadline) {
          throw new ProviderError(`rate limit ${prefix}: no room within ${maxWaitMs} ms`, { retryable: true, retryAfterMs: waitMs });
        }
        // A little jitter so that the workers woken by the same refill do not all ask at once.
        await sleep(waitMs + Math.floor(Math.random() * Math.min(waitMs, 20)), signal);
      }
    },
    async record(actualTokens, estimatedTokens = 0, observed = {}) {
      const delta = Math.round(actualTokens - estimatedTokens);
      // With nothing known, a Retry-After or an empty allowance whose size is not announced blocks until it resets.
      const block = Math.max(
        observed.retryAfterMs ?? 0,
        observed.remainingRequests === 0 && observed.limitRequests === undefined ? (observed.resetRequestsMs ?? 0) : 0,
        observed.remainingTokens === 0 && observed.limitTokens === undefined ? (observed.resetTokensMs ?? 0) : 0,
      );
      const learns = observed.limitRequests !== undefined || observed.limitTokens !== undefined || observed.remainingRequests !== undefined || observed.remainingTokens !== undefined;
      if (delta === 0 && block === 0 && !learns && requestsPerMinute <= 0 && tokensPerMinute <= 0) return;
      await redis.eval(
        SCRIPT,
        1,
        key,
        "record",
        ...limits,
        0,
        delta,
        observed.limitRequests ?? 0,
        observed.limitTokens ?? 0,
        observed.remainingRequests ?? -1,
        observed.remainingTokens ?? -1,
        Math.ceil(block),
      );
    },
  };
}
