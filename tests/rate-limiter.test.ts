// The Redis rate limiter: a budget shared by two instances, waiting for room, token accounting and correction, abort and the no-op limiter.
import Redis from "ioredis";
import { ProviderError } from "../src/workers/providers/provider";
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
});
