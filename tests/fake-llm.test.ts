// The fake provider's newer behaviours over HTTP — cached prompt tokens for a prefix seen before, RPM/TPM enforcement answering 429 with Retry-After and x-ratelimit-* headers, a context window answering 400 context_length_exceeded — and the OpenAI provider with the shared limiter against that enforcement: with no limits configured it learns them from the headers and keeps two clients under them.
import { Redis } from "ioredis";
import { createOpenAIProvider } from "../src/workers/providers/openai";
import { PermanentProviderError } from "../src/workers/providers/provider";
import { createRateLimiter } from "../src/workers/providers/rate-limiter";
import { type FakeOpenAI, startFakeOpenAI } from "./support/fake-llm";

let fake: FakeOpenAI;
let redis: Redis;
const PREFIX = `tranche-test:fake-llm:${process.pid}:${Date.now()}`;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  redis = new Redis("redis://127.0.0.1:6379");
});
afterAll(async () => {
  const keys = await redis.keys(`${PREFIX}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
  await fake.close();
});
beforeEach(() => {
  fake.setBehaviour({});
  fake.requests.length = 0;
});

interface Answer {
  usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } };
  error: { code: string; message: string };
}
const read = async (res: Response | Promise<Response>) => (await (await res).json()) as Answer;

const chat = (messages: { role: string; content: string }[], extra: Record<string, unknown> = {}) =>
  fetch(`${fake.url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer k" },
    body: JSON.stringify({ model: "gpt-4o-mini", messages, ...extra }),
  });

describe("fake provider", () => {
  it("reports as cached the leading messages an earlier request sent, above its threshold", async () => {
    const system = { role: "system", content: "Shared instructions for every document of the batch. ".repeat(20) };
    const first = await read(chat([system, { role: "user", content: "Document one." }]));
    const second = await read(chat([system, { role: "user", content: "Document two." }]));
    expect(first.usage.prompt_tokens_details.cached_tokens).toBe(0);
    expect(second.usage.prompt_tokens_details.cached_tokens).toBe(fake.requests[1]!.usage!.cached);
    expect(second.usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(100);
    expect(second.usage.prompt_tokens_details.cached_tokens).toBeLessThan(second.usage.prompt_tokens);
    fake.setBehaviour({ cacheMinTokens: 1024 });
    const third = await read(chat([system, { role: "user", content: "Document three." }]));
    expect(third.usage.prompt_tokens_details.cached_tokens).toBe(0);
  });

  it("answers 429 with Retry-After and rate-limit headers once a minute's requests are used", async () => {
    fake.setBehaviour({ limits: { requestsPerMinute: 2 } });
    const ok = await chat([{ role: "user", content: "hi" }]);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-ratelimit-limit-requests")).toBe("2");
    expect(ok.headers.get("x-ratelimit-remaining-requests")).toBe("1");
    await chat([{ role: "user", content: "hi" }]);
    const refused = await chat([{ role: "user", content: "hi" }]);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(29);
    expect(Number(refused.headers.get("retry-after-ms"))).toBeGreaterThan(29_000);
    expect(refused.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    expect((await read(refused)).error.code).toBe("rate_limit_exceeded");
  });

  it("counts the prompt and max_completion_tokens against tokens per minute", async () => {
    // Held for while the first is answered; its real, smaller answer gives the rest back afterwards.
    fake.setBehaviour({ limits: { tokensPerMinute: 1_000 }, latencyMs: 300 });
    const first = chat([{ role: "user", content: "hi" }], { max_completion_tokens: 900 });
    await fake.waitForRequests(1);
    const refused = await chat([{ role: "user", content: "hi" }], { max_completion_tokens: 900 });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("x-ratelimit-limit-tokens")).toBe("1000");
    expect((await first).status).toBe(200);
    expect((await chat([{ role: "user", content: "hi" }], { max_completion_tokens: 900 })).status).toBe(200);
  });

  it("answers 400 context_length_exceeded for a prompt and answer above its window, and the provider does not retry it", async () => {
    fake.setBehaviour({ contextTokens: 50 });
    const res = await chat([{ role: "user", content: "word ".repeat(100) }]);
    expect(res.status).toBe(400);
    expect((await read(res)).error).toMatchObject({ code: "context_length_exceeded", message: expect.stringMatching(/maximum context length is 50 tokens/) });
    const provider = createOpenAIProvider({ apiKey: "k", baseURL: fake.url, model: "gpt-4o-mini", timeoutMs: 2_000, maxRetries: 3, outputRetries: 1, baseDelayMs: 10 });
    fake.requests.length = 0;
    const error = await provider.analyze({ instructions: "Summarise.", documentName: "long.txt", chunks: [{ index: 0, text: "word ".repeat(100) }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermanentProviderError);
    expect(error).toMatchObject({ status: 400, retryable: false });
    expect(fake.requests).toHaveLength(1);
  });
});

describe("the limiter against the fake's enforcement", () => {
  it("with no limits configured, learns them from the headers and keeps two clients under them", async () => {
    // 10 requests per 2 s window; the limiters use the same window so the announced limit means the same.
    fake.setBehaviour({ limits: { requestsPerMinute: 10, windowMs: 2_000 }, latencyMs: 20 });
    const second = redis.duplicate();
    try {
    const clients = [redis, second].map((connection, i) => {
      const limiter = createRateLimiter({ redis: connection, prefix: `${PREFIX}:learn`, windowMs: 2_000, maxWaitMs: 10_000 });
      return createOpenAIProvider({ apiKey: `client-${i}`, baseURL: fake.url, model: "gpt-4o-mini", timeoutMs: 5_000, maxRetries: 5, outputRetries: 0, baseDelayMs: 10, limiter });
    });
    const started = Date.now();
    const work = Array.from({ length: 30 }, (_, i) => i);
    const lanes = Array.from({ length: 6 }, async (_, lane) => {
      for (let i = lane; i < work.length; i += 6) {
        await clients[lane % 2]!.analyze({ instructions: "Summarise.", documentName: `d${i}.txt`, chunks: [{ index: 0, text: `Document ${i}.` }] });
      }
    });
    await Promise.all(lanes);
    const elapsed = Date.now() - started;
    const statuses = fake.requests.map((r) => r.status);
    expect(statuses.filter((x) => x === 200)).toHaveLength(30);
    // 10 at once, then 5 a second: the 20 others take about 4 s.
    expect(elapsed).toBeGreaterThan(3_000);
    expect(statuses.filter((x) => x === 429).length).toBeLessThanOrEqual(2);
    expect(new Set(fake.requests.map((r) => r.apiKey))).toEqual(new Set(["client-0", "client-1"]));
    } finally {
      await second.quit();
    }
  });
});
