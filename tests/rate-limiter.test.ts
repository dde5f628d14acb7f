// The Redis rate limiter: a budget shared by two instances, waiting for room, token accounting and correction, abort, the no-op limiter, the burst ceiling, limits learned from a provider's headers, Retry-After blocking every instance; and reading those headers.
import Redis from "ioredis";
import { ProviderError } from "../src/workers/providers/provider";
import { parseDuration, readRateHeaders } from "../src/workers/providers/rate-headers";
import { createRateLimiter } from "../src/workers/providers/rate-limiter";

const PREFIX = `tranche-test:rate-limiter:${process.pid}:${Date.now()}`;
let a: Redis;
let b: Redis;

beforeAll(() => {
  a = new Redis("redis://127.0.0.1:6379");
  b = new Redis("redis://127.0.0.1:6379");
});

afterAll(async () => {
  const keys = await a.keys(`${PREFIX}:*`);
  if (keys.length > 0) await a.del(...keys);
  await Promise.all([a.quit(), b.quit()]);
});

describe("rate limiter", () => {
  it("is a no-op without limits", async () => {
    const limiter = createRateLimiter({ redis: a, prefix: `${PREFIX}:none` });
    await limiter.acquire(1_000_000);
    await limiter.record(5, 1);
    expect(await a.keys(`${PREFIX}:none*`)).toEqual([]);
  });

  it("shares one request budget between two instances", async () => {
    const options = { prefix: `${PREFIX}:shared`, requestsPerMinute: 4, maxWaitMs: 100 };
    const first = createRateLimiter({ redis: a, ...options });
    const second = createRateLimiter({ redis: b, ...options });
    await first.acquire(0);
    await second.acquire(0);
    await first.acquire(0);
    await second.acquire(0);
    const started = Date.now();
    const error = await first.acquire(0).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ retryable: true, retryAfterMs: expect.any(Number) });
    expect(Date.now() - started).toBeLessThan(100); // the wait is known to exceed maxWaitMs, so it fails at once
    await expect(second.acquire(0)).rejects.toBeInstanceOf(ProviderError);
  });

  it("waits until the sliding window has room", async () => {
    const options = { prefix: `${PREFIX}:wait`, requestsPerMinute: 2, windowMs: 400, maxWaitMs: 5_000 };
    const first = createRateLimiter({ redis: a, ...options });
    const second = createRateLimiter({ redis: b, ...options });
    await first.acquire(0);
    await second.acquire(0);
    const started = Date.now();
    await first.acquire(0);
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThan(20);
    expect(waited).toBeLessThan(1_000);
  });

  it("counts tokens and takes corrections", async () => {
    const options = { prefix: `${PREFIX}:tokens`, tokensPerMinute: 1_000, maxWaitMs: 50 };
    const first = createRateLimiter({ redis: a, ...options });
    const second = createRateLimiter({ redis: b, ...options });
    await first.acquire(600);
    await expect(second.acquire(600)).rejects.toBeInstanceOf(ProviderError);
    await first.record(200, 600); // the call used less than estimated: 400 tokens go back
    await second.acquire(600);
    await expect(first.acquire(300)).rejects.toBeInstanceOf(ProviderError);
  });

  it("stops waiting when aborted", async () => {
    const limiter = createRateLimiter({ redis: a, prefix: `${PREFIX}:abort`, requestsPerMinute: 1, maxWaitMs: 120_000 });
    await limiter.acquire(0);
    const controller = new AbortController();
    const pending = limiter.acquire(0, controller.signal);
    setTimeout(() => controller.abort(), 50);
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
  });

  it("holds at most burstMs worth of the limit", async () => {
    const limiter = createRateLimiter({ redis: a, prefix: `${PREFIX}:burst`, requestsPerMinute: 10, windowMs: 1_000, burstMs: 200, maxWaitMs: 30 });
    await limiter.acquire(0);
    await limiter.acquire(0);
    await expect(limiter.acquire(0)).rejects.toMatchObject({ retryAfterMs: expect.any(Number) });
  });

  it("follows the limits a provider announces when none are configured", async () => {
    const options = { prefix: `${PREFIX}:learned`, windowMs: 1_000, maxWaitMs: 50 };
    const first = createRateLimiter({ redis: a, ...options });
    const second = createRateLimiter({ redis: b, ...options });
    await first.acquire(10); // nothing known yet: no wait
    await first.record(10, 10, { limitRequests: 4, remainingRequests: 0, limitTokens: 1_000, remainingTokens: 900 });
    // 4 per second, none left: the next one in about 250 ms, for every instance.
    const error = await second.acquire(10).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).retryAfterMs).toBeGreaterThan(150);
    expect((error as ProviderError).retryAfterMs).toBeLessThanOrEqual(250);
  });

  it("makes every instance wait out a Retry-After", async () => {
    const options = { prefix: `${PREFIX}:retry-after`, maxWaitMs: 5_000 };
    const first = createRateLimiter({ redis: a, ...options });
    const second = createRateLimiter({ redis: b, ...options });
    await first.record(0, 100, { retryAfterMs: 300 });
    const started = Date.now();
    await second.acquire(100);
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
  });
});

describe("rate-limit headers", () => {
  it("reads OpenAI's x-ratelimit-* with their durations", () => {
    const headers = new Headers({
      "x-ratelimit-limit-requests": "600",
      "x-ratelimit-limit-tokens": "200000",
      "x-ratelimit-remaining-requests": "599",
      "x-ratelimit-remaining-tokens": "199500",
      "x-ratelimit-reset-requests": "100ms",
      "x-ratelimit-reset-tokens": "6m0s",
      "retry-after-ms": "250",
    });
    expect(readRateHeaders(headers)).toEqual({
      limitRequests: 600,
      limitTokens: 200_000,
      remainingRequests: 599,
      remainingTokens: 199_500,
      resetRequestsMs: 100,
      resetTokensMs: 360_000,
      retryAfterMs: 250,
    });
    expect(parseDuration("1h2m3.5s")).toBe(3_723_500);
    expect(parseDuration("soon")).toBeUndefined();
  });

  it("reads Anthropic's anthropic-ratelimit-* with their reset times", () => {
    const now = Date.parse("2026-12-01T12:00:00Z");
    const headers = new Headers({
      "anthropic-ratelimit-requests-limit": "50",
      "anthropic-ratelimit-requests-remaining": "49",
      "anthropic-ratelimit-requests-reset": "2026-12-01T12:00:01Z",
      "anthropic-ratelimit-tokens-limit": "80000",
      "anthropic-ratelimit-tokens-remaining": "0",
      "anthropic-ratelimit-tokens-reset": "2026-12-01T12:00:30Z",
      "retry-after": "30",
    });
    expect(readRateHeaders(headers, now)).toEqual({
      limitRequests: 50,
      remainingRequests: 49,
      resetRequestsMs: 1_000,
      limitTokens: 80_000,
      remainingTokens: 0,
      resetTokensMs: 30_000,
      retryAfterMs: 30_000,
    });
    expect(readRateHeaders(new Headers())).toEqual({});
  });
});
