// The OpenAI provider against the fake server (usage, retries, Retry-After, auth, re-asks, abort, timeout), the Anthropic provider against a fake /v1/messages, the retry helpers and provider selection.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { countTokens } from "gpt-tokenizer";
import { createAnthropicProvider } from "../src/workers/providers/anthropic";
import { selectProvider } from "../src/workers/providers/index";
import { createOpenAIProvider, type OpenAIProviderOptions } from "../src/workers/providers/openai";
import {
  type AnalysisRequest,
  AuthenticationError,
  InvalidOutputError,
  PermanentProviderError,
  ProviderError,
} from "../src/workers/providers/provider";
import type { RateLimiter } from "../src/workers/providers/rate-limiter";
import { backoffDelay, parseRetryAfter } from "../src/workers/providers/retry";
import { type FakeOpenAI, replies, startFakeOpenAI } from "./support/fake-llm";

const schema = {
  type: "object",
  required: ["title", "pages"],
  properties: { title: { type: "string" }, pages: { type: "integer", minimum: 1 } },
};

const request: AnalysisRequest = {
  instructions: "Give the document's title.",
  documentName: "report.txt",
  chunks: [
    { index: 1, text: "Second chunk." },
    { index: 0, text: "First chunk of the report." },
  ],
};

let fake: FakeOpenAI;

beforeAll(async () => {
  fake = await startFakeOpenAI();
});

afterAll(async () => {
  await fake.close();
});

beforeEach(() => {
  fake.setBehaviour({});
  fake.requests.length = 0;
});

function openai(overrides: Partial<OpenAIProviderOptions> = {}) {
  return createOpenAIProvider({
    apiKey: "test-key",
    baseURL: fake.url,
    model: "gpt-test",
    timeoutMs: 2_000,
    maxRetries: 3,
    outputRetries: 1,
    baseDelayMs: 10,
    maxDelayMs: 50,
    ...overrides,
  });
}

const messagesOf = (n: number) => (fake.requests[n]?.body.messages ?? []) as { role: string; content: string }[];

describe("OpenAI provider", () => {
  it("sends instructions and chunks in order, and reports the answer's usage", async () => {
    fake.setBehaviour({ respond: () => replies.completion("A short report.", { usage: { prompt: 123, completion: 45 } }) });
    const result = await openai().analyze(request);
    expect(result).toEqual({
      output: "A short report.",
      requests: 1,
      inputTokens: 123,
      cachedInputTokens: 0,
      cacheWriteTokens: 0,
      outputTokens: 45,
      attempts: 1,
      model: "gpt-test",
      provider: "openai",
      strategy: "single",
    });
    const [system, user] = messagesOf(0);
    expect(system).toEqual({ role: "system", content: "Give the document's title." });
    expect(user?.content).toBe("Document: report.txt\n\nFirst chunk of the report.\n\nSecond chunk.");
    expect(fake.requests[0]?.body.response_format).toBeUndefined();
  });

  it("uses the batch's model over the default, and counts tokens itself when the answer has no usage", async () => {
    fake.setBehaviour({ respond: () => replies.completion("Counted locally.", { usage: false }) });
    const result = await openai().analyze({ ...request, model: "batch-model", temperature: 0.2, maxTokens: 100 });
    expect(fake.requests[0]).toMatchObject({ model: "batch-model", body: { temperature: 0.2, max_completion_tokens: 100 } });
    expect(result.model).toBe("batch-model");
    expect(result.inputTokens).toBeGreaterThan(10);
    expect(result.outputTokens).toBe(countTokens("Counted locally."));
  });

  it("asks for json_schema output and returns the parsed, validated object", async () => {
    const result = await openai().analyze({ ...request, outputSchema: schema });
    expect(fake.requests[0]?.body.response_format).toEqual({ type: "json_schema", json_schema: { name: "analysis", schema, strict: false } });
    expect(messagesOf(0)[0]?.content).toContain(JSON.stringify(schema));
    expect(result.output).toEqual({ title: expect.stringContaining("Document: report.txt"), pages: 9 });
  });

  it("waits as long as a 429's Retry-After (seconds) says, then succeeds", async () => {
    fake.setBehaviour({ respond: (body, n) => (n === 1 ? replies.rateLimited({ seconds: 1 }) : replies.default(body)) });
    const result = await openai().analyze(request);
    expect(result.attempts).toBe(2);
    const [first, second] = fake.requests;
    const waited = second!.at - first!.at;
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(waited).toBeLessThan(1_500);
  });

  it("honours retry-after-ms over its own backoff", async () => {
    fake.setBehaviour({ respond: (body, n) => (n === 1 ? replies.rateLimited({ ms: 300 }) : replies.default(body)) });
    await openai().analyze(request);
    const waited = fake.requests[1]!.at - fake.requests[0]!.at;
    expect(waited).toBeGreaterThanOrEqual(290);
    expect(waited).toBeLessThan(700);
  });

  it("gives a Retry-After longer than it will wait back to the caller at once", async () => {
    fake.setBehaviour({ respond: () => replies.rateLimited({ seconds: 3600 }) });
    const error = await openai().analyze(request).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ retryable: true, status: 429, retryAfterMs: 3_600_000 });
    expect(fake.requests).toHaveLength(1);
  });

  it("retries 500s with backoff and succeeds on the third attempt", async () => {
    fake.setBehaviour({ respond: (body, n) => (n <= 2 ? replies.serverError() : replies.default(body)) });
    const result = await openai().analyze(request);
    expect(result.attempts).toBe(3);
    expect(fake.requests.map((r) => r.status)).toEqual([500, 500, 200]);
  });

  it("fails retryable once the retries are spent", async () => {
    fake.setBehaviour({ respond: () => replies.serverError(503) });
    const error = await openai({ maxRetries: 2 }).analyze(request).catch((e: unknown) => e);
    expect(error).toMatchObject({ retryable: true, status: 503 });
    expect(fake.requests).toHaveLength(3);
  });

  it("retries a 200 whose body is not JSON", async () => {
    fake.setBehaviour({ respond: (body, n) => (n === 1 ? replies.malformedBody() : replies.default(body)) });
    expect((await openai().analyze(request)).attempts).toBe(2);
  });

  it("turns 401 into AuthenticationError without retrying", async () => {
    fake.setBehaviour({ respond: () => replies.unauthorized() });
    const error = await openai().analyze(request).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error).toMatchObject({ retryable: false, status: 401 });
    expect(fake.requests).toHaveLength(1);
  });

  it("does not retry a 400", async () => {
    fake.setBehaviour({ respond: () => ({ kind: "http", status: 400, headers: {}, body: '{"error":{"message":"bad"}}' }) });
    const error = await openai().analyze(request).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermanentProviderError);
    expect(fake.requests).toHaveLength(1);
  });

  it("re-asks after malformed JSON and gives up with InvalidOutputError when it stays malformed", async () => {
    fake.setBehaviour({ respond: () => replies.malformedContent() });
    const error = await openai({ outputRetries: 2 }).analyze({ ...request, outputSchema: schema }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidOutputError);
    expect((error as InvalidOutputError).problems[0]).toMatch(/^not valid JSON/);
    expect(fake.requests).toHaveLength(3);
    const reask = messagesOf(1);
    expect(reask.map((m) => m.role)).toEqual(["system", "user", "assistant", "user"]);
    expect(reask[3]?.content).toMatch(/not valid JSON/);
  });

  it("re-asks with the validation errors when the output does not match the schema", async () => {
    fake.setBehaviour({ respond: (body, n) => (n === 1 ? replies.json({ title: "Report", pages: 0 }) : replies.json({ title: "Report", pages: 2 })) });
    const result = await openai().analyze({ ...request, outputSchema: schema });
    expect(result).toMatchObject({ output: { title: "Report", pages: 2 }, attempts: 2 });
    const reask = messagesOf(1);
    expect(reask[2]).toEqual({ role: "assistant", content: '{"title":"Report","pages":0}' });
    expect(reask[3]?.content).toContain("/pages must be >= 1");
    expect(result.inputTokens).toBeGreaterThan(0);
  });

  it("aborts the call in flight when the request's signal fires", async () => {
    fake.pause();
    const controller = new AbortController();
    const started = Date.now();
    const pending = openai().analyze({ ...request, signal: controller.signal }).catch((e: unknown) => e);
    await fake.waitForRequests(1);
    controller.abort();
    const error = await pending;
    fake.resume();
    expect((error as Error).name).toBe("AbortError");
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]?.status).toBe(0);
  });

  it("times each attempt out and retries it", async () => {
    fake.setBehaviour({ latencyMs: 400 });
    const started = Date.now();
    const error = await openai({ timeoutMs: 100, maxRetries: 1 }).analyze(request).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ retryable: true, message: expect.stringMatching(/timed out after 100 ms/) });
    expect(fake.requests).toHaveLength(2);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("asks the rate limiter before each attempt, refunds a refused attempt and corrects it with the real usage", async () => {
    const calls: string[] = [];
    const limiter: RateLimiter = {
      acquire: async (tokens) => void calls.push(`acquire ${tokens > 0}`),
      record: async (actual, estimated) => void calls.push(`record ${actual} ${estimated !== undefined}`),
    };
    fake.setBehaviour({ respond: (body, n) => (n === 1 ? replies.serverError() : replies.completion("ok", { usage: { prompt: 10, completion: 2 } })) });
    await openai({ limiter }).analyze(request);
    expect(calls).toEqual(["acquire true", "record 0 true", "acquire true", "record 12 true"]);
  });
});

describe("Anthropic provider", () => {
  let server: Server;
  let received: { headers: Record<string, unknown>; body: Record<string, unknown> }[];
  let baseURL: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let raw = "";
      req.on("data", (chunk: Buffer) => (raw += chunk.toString()));
      req.on("end", () => {
        received.push({ headers: req.headers, body: JSON.parse(raw) as Record<string, unknown> });
        res.setHeader("content-type", "application/json");
        if (req.method !== "POST" || req.url !== "/v1/messages") return res.writeHead(404).end("{}");
        if (req.headers.authorization !== "Bearer good-key" && req.headers["x-api-key"] !== "good-key") {
          return res
            .writeHead(401)
            .end(JSON.stringify({ type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } }));
        }
        const text = JSON.stringify({ title: "Report", pages: 3 });
        res.end(
          JSON.stringify({
            id: "msg_fake",
            type: "message",
            role: "assistant",
            model: "claude-test",
            content: [{ type: "text", text }],
            stop_reason: "end_turn",
            stop_sequence: null,
            usage: { input_tokens: 31, output_tokens: 9, cache_read_input_tokens: 400, cache_creation_input_tokens: 0 },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  });

  beforeEach(() => {
    received = [];
  });

  const anthropic = (apiKey: string) =>
    createAnthropicProvider({ apiKey, baseURL, model: "claude-test", timeoutMs: 2_000, maxRetries: 2, outputRetries: 1, baseDelayMs: 10 });

  it("returns the validated JSON answer and its usage", async () => {
    const result = await anthropic("good-key").analyze({ ...request, outputSchema: schema, maxTokens: 500 });
    // Anthropic's input_tokens leaves the cache reads out; ours counts every prompt token.
    expect(result).toEqual({
      output: { title: "Report", pages: 3 },
      requests: 1,
      inputTokens: 431,
      cachedInputTokens: 400,
      cacheWriteTokens: 0,
      outputTokens: 9,
      attempts: 1,
      model: "claude-test",
      provider: "anthropic",
      strategy: "single",
    });
    expect(received[0]?.body).toMatchObject({ model: "claude-test", max_tokens: 500, messages: [{ role: "user" }] });
    // The instructions go first, marked for Anthropic's (opt-in) prompt cache.
    const [system] = received[0]?.body.system as { type: string; text: string; cache_control?: unknown }[];
    expect(system).toMatchObject({ type: "text", cache_control: { type: "ephemeral" } });
    expect(system?.text).toContain(JSON.stringify(schema));
  });

  it("turns 401 into AuthenticationError without retrying", async () => {
    const error = await anthropic("bad-key").analyze(request).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(received).toHaveLength(1);
  });
});

describe("retry helpers", () => {
  it("reads Retry-After as seconds, as an HTTP date, and retry-after-ms first", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter(new Headers({ "retry-after": "2" }), now)).toBe(2_000);
    expect(parseRetryAfter(new Headers({ "retry-after": "Thu, 01 Jan 2026 00:00:05 GMT" }), now)).toBe(5_000);
    expect(parseRetryAfter(new Headers({ "retry-after": "2", "retry-after-ms": "150.5" }), now)).toBe(151);
    expect(parseRetryAfter(new Headers({ "retry-after": "soon" }), now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it("draws full-jitter delays under a doubling, capped ceiling", () => {
    const policy = { baseDelayMs: 250, maxDelayMs: 20_000 };
    expect(backoffDelay(0, policy, () => 0.999)).toBe(249);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(1_000);
    expect(backoffDelay(20, policy, () => 0.5)).toBe(10_000);
    expect(backoffDelay(5, policy, () => 0)).toBe(0);
  });
});

describe("selectProvider", () => {
  const base = { LLM_TIMEOUT_MS: 1_000, LLM_MAX_RETRIES: 1, LLM_OUTPUT_RETRIES: 1 };

  it("picks local without keys, openai with a key or a base URL, and what LLM_PROVIDER names", () => {
    expect(selectProvider(base).name).toBe("local");
    expect(selectProvider({ ...base, OPENAI_API_KEY: "sk-test" }).name).toBe("openai");
    expect(selectProvider({ ...base, OPENAI_BASE_URL: fake.url }).name).toBe("openai");
    expect(selectProvider({ ...base, LLM_PROVIDER: "anthropic", ANTHROPIC_API_KEY: "key" }).name).toBe("anthropic");
    expect(selectProvider({ ...base, LLM_PROVIDER: "local", OPENAI_API_KEY: "sk-test" }).name).toBe("local");
  });

  it("uses LLM_MODEL, then the default model, and lets the batch's model win", async () => {
    const configured = selectProvider({ ...base, OPENAI_BASE_URL: fake.url, LLM_MODEL: "configured-model" });
    await configured.analyze(request);
    await configured.analyze({ ...request, model: "batch-model" });
    await selectProvider({ ...base, OPENAI_BASE_URL: fake.url }).analyze(request);
    expect(fake.requests.map((r) => r.model)).toEqual(["configured-model", "batch-model", "gpt-4o-mini"]);
  });
});
