/**
 * A fake OpenAI-compatible server for tests and benchmarks: a real HTTP server on loopback that
 * answers POST /v1/chat/completions as the API does, with scriptable failures, latency and a gate
 * that holds answers, and a log of every request it received. Like the real API it reports cached
 * prompt tokens (a prefix of messages it has seen before), can enforce requests and tokens per
 * minute (429 with Retry-After and `x-ratelimit-*` headers), and can have a context window
 * (400 `context_length_exceeded`).
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { countTokens } from "gpt-tokenizer";

/** The part of a chat completion request the fake looks at. */
export interface ChatRequestBody {
  model?: string;
  messages?: { role: string; content: unknown }[];
  response_format?: { type: string; json_schema?: { name?: string; schema?: Record<string, unknown> } };
  [key: string]: unknown;
}

/**
 * Token usage to report; "counted" reports the prompt's and the answer's gpt-tokenizer counts, and as
 * cached the longest run of leading messages an earlier request already sent.
 */
export interface Usage {
  prompt: number;
  completion: number;
  /** `prompt_tokens_details.cached_tokens`; 0 when absent. */
  cached?: number;
}

/** What to answer: a completion built around `content`, or a raw HTTP response. */
export type FakeReply =
  | { kind: "completion"; content: string; usage: Usage | "counted" | false; finishReason: string }
  | { kind: "http"; status: number; headers: Record<string, string>; body: string };

/** Rate limits enforced as the providers describe theirs: buckets of one window's worth, refilled continuously. */
export interface FakeLimits {
  requestsPerMinute?: number;
  /** Counts the prompt and `max_completion_tokens` at arrival, then the real answer's tokens instead of the latter. */
  tokensPerMinute?: number;
  /** One minute unless a test cannot wait that long. */
  windowMs?: number;
  /** The most a bucket holds, as time at the limit's rate; a whole window by default. */
  burstMs?: number;
}

export interface FakeBehaviour {
  /** Delay before answering, fixed or per request (`n` counts requests from 1 since the behaviour was set). */
  latencyMs?: number | ((body: ChatRequestBody, n: number) => number);
  /** Decides each answer; `replies.default` when absent. */
  respond?: (body: ChatRequestBody, n: number) => FakeReply | Promise<FakeReply>;
  /** Enforced before `respond` is asked; a refused request is answered 429 and not counted. */
  limits?: FakeLimits;
  /** The model's context window: a prompt plus `max_completion_tokens` above it is answered 400 `context_length_exceeded`. */
  contextTokens?: number;
  /** Cached prefixes shorter than this count as not cached (OpenAI's is 1024); 0 by default. */
  cacheMinTokens?: number;
}

/** One request as received. `status` is 0 until answered, and stays 0 if the client left first. */
export interface FakeRequest {
  at: number;
  model: string | undefined;
  body: ChatRequestBody;
  status: number;
  /** The bearer token it came with, so a test can tell its clients apart. */
  apiKey: string | undefined;
  /** The prompt's tokens as the fake counts them (gpt-tokenizer over the messages joined by newlines). */
  promptTokens: number;
  /** The usage it answered with, for a completion. */
  usage?: { prompt: number; completion: number; cached: number };
}

export interface FakeOpenAI {
  /** Base URL for the SDK, ending in /v1. */
  url: string;
  requests: FakeRequest[];
  /** Replaces the behaviour (omitted fields return to their defaults) and restarts its request count. */
  setBehaviour(behaviour: FakeBehaviour): void;
  /** Holds every answer (requests are still received and logged) until `resume`. */
  pause(): void;
  resume(): void;
  /** Resolves once at least `count` requests have arrived. */
  waitForRequests(count: number): Promise<void>;
  close(): Promise<void>;
}

const errorBody = (type: string, message: string, code: string | null = null) =>
  JSON.stringify({ error: { message, type, param: null, code } });

/** Ready-made answers for `respond`. */
export const replies = {
  completion: (content: string, options: { usage?: Usage | false; finishReason?: string } = {}): FakeReply => ({
    kind: "completion",
    content,
    usage: options.usage ?? "counted",
    finishReason: options.finishReason ?? "stop",
  }),
  json: (value: unknown): FakeReply => replies.completion(JSON.stringify(value)),
  /** 429 asking for a wait: `Retry-After` in seconds or as an HTTP date, or OpenAI's `retry-after-ms`. */
  rateLimited: (retryAfter: { seconds?: number; ms?: number; date?: Date } = { seconds: 1 }): FakeReply => ({
    kind: "http",
    status: 429,
    headers: {
      ...(retryAfter.seconds !== undefined && { "retry-after": String(retryAfter.seconds) }),
      ...(retryAfter.ms !== undefined && { "retry-after-ms": String(retryAfter.ms) }),
      ...(retryAfter.date !== undefined && { "retry-after": retryAfter.date.toUTCString() }),
    },
    body: errorBody("requests", "Rate limit reached", "rate_limit_exceeded"),
  }),
  serverError: (status = 500): FakeReply => ({ kind: "http", status, headers: {}, body: errorBody("server_error", "The server had an error") }),
  unauthorized: (): FakeReply => ({
    kind: "http",
    status: 401,
    headers: {},
    body: errorBody("invalid_request_error", "Incorrect API key provided", "invalid_api_key"),
  }),
  /** A 200 whose body is cut off mid-JSON, as from a broken proxy. */
  malformedBody: (): FakeReply => ({ kind: "http", status: 200, headers: {}, body: '{"id":"chatcmpl-broken","choices":[{"mess' }),
  /** A well-formed completion whose content is not JSON. */
  malformedContent: (): FakeReply => replies.completion('Sure! Here is the analysis: {"summary": "unfinished'),
  /** Deterministic JSON from the request: the schema's required properties, or a summary and a word count. */
  default: (body: ChatRequestBody): FakeReply => {
    const text = documentText(body);
    const schema = body.response_format?.type === "json_schema" ? body.response_format.json_schema?.schema : undefined;
    const words = text.split(/\s+/).filter(Boolean).length;
    return replies.json(schema ? sample(schema, text, words) : { summary: text.slice(0, 80), words });
  },
};

interface Bucket {
  /** Per window. */
  limit: number;
  /** The most it holds. */
  capacity: number;
  level: number;
  at: number;
}

/** The two buckets of a behaviour's limits; both start full. */
function bucketsFor(limits: FakeLimits | undefined) {
  if (!limits) return undefined;
  const now = Date.now();
  const windowMs = limits.windowMs ?? 60_000;
  const share = Math.min(windowMs, limits.burstMs ?? windowMs) / windowMs;
  const bucket = (limit: number | undefined): Bucket | undefined =>
    limit ? { limit, capacity: limit * share, level: limit * share, at: now } : undefined;
  return { windowMs, requests: bucket(limits.requestsPerMinute), tokens: bucket(limits.tokensPerMinute) };
}
type Buckets = NonNullable<ReturnType<typeof bucketsFor>>;

function refill(b: Bucket | undefined, windowMs: number, now: number): void {
  if (!b) return;
  b.level = Math.min(b.capacity, b.level + ((now - b.at) * b.limit) / windowMs);
  b.at = now;
}

/** Time until a bucket is full again, as OpenAI writes it (`1.5s`, `20ms`). */
function untilFull(b: Bucket, windowMs: number): string {
  const ms = Math.ceil(((b.capacity - b.level) * windowMs) / b.limit);
  return ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(3)}s`;
}

function rateHeaders(buckets: Buckets | undefined): Record<string, string> {
  if (!buckets) return {};
  const headers: Record<string, string> = {};
  for (const [name, b] of [["requests", buckets.requests], ["tokens", buckets.tokens]] as const) {
    if (!b) continue;
    headers[`x-ratelimit-limit-${name}`] = String(b.limit);
    headers[`x-ratelimit-remaining-${name}`] = String(Math.max(0, Math.floor(b.level)));
    headers[`x-ratelimit-reset-${name}`] = untilFull(b, buckets.windowMs);
  }
  return headers;
}

/** Starts the fake on 127.0.0.1 on a free port. */
export async function startFakeOpenAI(initial: FakeBehaviour = {}): Promise<FakeOpenAI> {
  let behaviour = initial;
  let buckets = bucketsFor(initial.limits);
  /** Hashes of every run of leading messages seen, for the cached-token count. */
  const seenPrefixes = new Set<string>();
  let received = 0;
  let closed = false;
  let gate: { promise: Promise<void>; open: () => void } | undefined;
  const requests: FakeRequest[] = [];
  const timers = new Map<NodeJS.Timeout, () => void>();
  const waiters = new Set<{ count: number; resolve: () => void }>();

  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.set(timer, resolve);
    });

  const log = (entry: FakeRequest) => {
    requests.push(entry);
    for (const w of waiters) {
      if (requests.length >= w.count) {
        waiters.delete(w);
        w.resolve();
      }
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const at = Date.now();
    let gone = false;
    res.on("close", () => (gone = true));
    const raw = await readBody(req);
    let body: ChatRequestBody = {};
    let readable = true;
    try {
      body = JSON.parse(raw) as ChatRequestBody;
    } catch {
      readable = false;
    }
    const texts = (body.messages ?? []).map((m) => contentText(m.content));
    const apiKey = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const entry: FakeRequest = { at, model: body.model, body, status: 0, apiKey, promptTokens: countTokens(texts.join("\n")) };
    log(entry);
    const n = ++received;
    if (req.method !== "POST" || !req.url?.endsWith("/chat/completions")) {
      return answer(res, entry, { kind: "http", status: 404, headers: {}, body: errorBody("invalid_request_error", `No route ${req.url}`) });
    }
    if (!readable) {
      return answer(res, entry, { kind: "http", status: 400, headers: {}, body: errorBody("invalid_request_error", "Body is not JSON") });
    }
    const arrival = behaviour;
    const reserved = Number(body.max_completion_tokens ?? body.max_tokens ?? 0) || 0;
    if (arrival.contextTokens !== undefined && entry.promptTokens + reserved > arrival.contextTokens) {
      const message =
        `This model's maximum context length is ${arrival.contextTokens} tokens. However, you requested ${entry.promptTokens + reserved} tokens ` +
        `(${entry.promptTokens} in the messages, ${reserved} in the completion). Please reduce the length of the messages or completion.`;
      return answer(res, entry, { kind: "http", status: 400, headers: {}, body: errorBody("invalid_request_error", message, "context_length_exceeded") });
    }
    const limits = buckets;
    if (limits) {
      refill(limits.requests, limits.windowMs, at);
      refill(limits.tokens, limits.windowMs, at);
      const need = entry.promptTokens + reserved;
      const waits = [
        limits.requests && limits.requests.level < 1 ? ((1 - limits.requests.level) * limits.windowMs) / limits.requests.limit : 0,
        limits.tokens && limits.tokens.level < need ? ((need - limits.tokens.level) * limits.windowMs) / limits.tokens.limit : 0,
      ];
      const waitMs = Math.ceil(Math.max(...waits));
      if (waitMs > 0) {
        const which = waits[0]! >= waits[1]! ? "requests" : "tokens";
        return answer(res, entry, {
          kind: "http",
          status: 429,
          headers: { "retry-after": String(Math.ceil(waitMs / 1000)), "retry-after-ms": String(waitMs), ...rateHeaders(limits) },
          body: errorBody(which, `Rate limit reached for ${which} per minute. Please try again in ${waitMs}ms.`, "rate_limit_exceeded"),
        });
      }
      if (limits.requests) limits.requests.level -= 1;
      if (limits.tokens) limits.tokens.level -= need;
    }
    const cached = cachedPrefixTokens(body.messages ?? [], texts, seenPrefixes, arrival.cacheMinTokens ?? 0);
    if (gate) await gate.promise;
    const current = behaviour;
    const latency = typeof current.latencyMs === "function" ? current.latencyMs(body, n) : (current.latencyMs ?? 0);
    if (latency > 0) await wait(latency);
    const respond = current.respond ?? replies.default;
    // A throwing `respond` is a bug in the test; answering 500 shows it in the log instead of hanging the client.
    const reply = await Promise.resolve()
      .then(() => respond(body, n))
      .catch((err: unknown): FakeReply => ({ kind: "http", status: 500, headers: {}, body: errorBody("server_error", String(err)) }));
    if (closed || gone) return;
    const usage = answer(res, entry, reply, body, n, cached, () => rateHeaders(limits));
    if (limits?.tokens && usage) {
      // The answer's real size replaces what was held for it.
      refill(limits.tokens, limits.windowMs, Date.now());
      limits.tokens.level = Math.min(limits.tokens.capacity, limits.tokens.level + reserved - usage.completion);
    }
  };

  // Whatever else fails (a throwing `latencyMs`), the client sees a dropped connection rather than a hang.
  const server = createServer((req, res) => handle(req, res).catch(() => res.destroy()));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    setBehaviour: (next) => {
      behaviour = next;
      buckets = bucketsFor(next.limits);
      received = 0;
    },
    pause: () => {
      if (gate) return;
      let open = () => {};
      const promise = new Promise<void>((resolve) => (open = resolve));
      gate = { promise, open };
    },
    resume: () => {
      gate?.open();
      gate = undefined;
    },
    waitForRequests: (count) =>
      new Promise<void>((resolve) => {
        if (requests.length >= count) resolve();
        else waiters.add({ count, resolve });
      }),
    close: async () => {
      closed = true;
      gate?.open();
      for (const [timer, resolve] of timers) {
        clearTimeout(timer);
        resolve();
      }
      timers.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** Writes the answer; returns the usage reported, for a completion. */
function answer(
  res: ServerResponse,
  entry: FakeRequest,
  reply: FakeReply,
  body: ChatRequestBody = {},
  n = 0,
  cached = 0,
  headers: () => Record<string, string> = () => ({}),
): { prompt: number; completion: number; cached: number } | undefined {
  entry.status = reply.kind === "http" ? reply.status : 200;
  if (reply.kind === "http") {
    res.writeHead(reply.status, { "content-type": "application/json", ...headers(), ...reply.headers }).end(reply.body);
    return undefined;
  }
  const usage =
    reply.usage === "counted"
      ? { prompt: entry.promptTokens, completion: countTokens(reply.content), cached }
      : reply.usage && { ...reply.usage, cached: reply.usage.cached ?? 0 };
  if (usage) entry.usage = usage;
  const completion = {
    id: `chatcmpl-fake-${n}`,
    object: "chat.completion",
    created: Math.floor(entry.at / 1000),
    model: body.model ?? "fake-model",
    choices: [{ index: 0, message: { role: "assistant", content: reply.content, refusal: null }, logprobs: null, finish_reason: reply.finishReason }],
    ...(usage && {
      usage: {
        prompt_tokens: usage.prompt,
        completion_tokens: usage.completion,
        total_tokens: usage.prompt + usage.completion,
        prompt_tokens_details: { cached_tokens: usage.cached },
      },
    }),
  };
  res.writeHead(200, { "content-type": "application/json", ...headers() }).end(JSON.stringify(completion));
  return usage || undefined;
}

const MAX_REMEMBERED_PREFIXES = 100_000;

/**
 * Tokens of the longest run of leading messages an earlier request also began with (as a provider's
 * prompt cache would serve them), then remembers this request's runs. Below `minTokens`, nothing.
 */
function cachedPrefixTokens(messages: { role: string }[], texts: string[], seen: Set<string>, minTokens: number): number {
  const hash = createHash("sha256");
  const keys = texts.map((text, i) => {
    hash.update(`${messages[i]?.role}\u0000${text}\u0000`);
    return hash.copy().digest("hex");
  });
  let longest = -1;
  keys.forEach((key, i) => {
    if (seen.has(key)) longest = i;
  });
  if (seen.size > MAX_REMEMBERED_PREFIXES) seen.clear();
  for (const key of keys) seen.add(key);
  const tokens = longest < 0 ? 0 : countTokens(texts.slice(0, longest + 1).join("\n"));
  return tokens >= minTokens ? tokens : 0;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    // A client that leaves mid-body still gets logged, with what arrived.
    req.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((part: { text?: unknown }) => (typeof part.text === "string" ? part.text : "")).join("");
  return "";
}

/** The document: the first user message, so that re-asks get the same answer as the first ask. */
function documentText(body: ChatRequestBody): string {
  return contentText(body.messages?.find((m) => m.role === "user")?.content);
}

/** A plausible value for `schema`: required properties only, strings from the text, numbers from the word count. */
function sample(schema: Record<string, unknown>, text: string, words: number, key = "value"): unknown {
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  const alternatives = (schema.anyOf ?? schema.oneOf) as Record<string, unknown>[] | undefined;
  if (alternatives?.[0]) return sample(alternatives[0], text, words, key);
  const declared = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  const type = declared ?? (schema.properties ? "object" : "string");
  switch (type) {
    case "object": {
      const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
      const required = (schema.required ?? []) as string[];
      return Object.fromEntries(required.map((name) => [name, sample(properties[name] ?? {}, text, words, name)]));
    }
    case "array": {
      const items = (schema.items ?? {}) as Record<string, unknown>;
      const count = Math.max(1, Number(schema.minItems ?? 1));
      return Array.from({ length: count }, () => sample(items, text, words, key));
    }
    case "integer":
    case "number": {
      const min = typeof schema.minimum === "number" ? schema.minimum : -Infinity;
      const max = typeof schema.maximum === "number" ? schema.maximum : Infinity;
      return Math.min(max, Math.max(min, words));
    }
    case "boolean":
      return true;
    case "null":
      return null;
    default:
      return sampleString(schema, text, key);
  }
}

function sampleString(schema: Record<string, unknown>, text: string, key: string): string {
  if (schema.format === "date") return "2024-01-01";
  if (schema.format === "date-time") return "2024-01-01T00:00:00Z";
  if (schema.format === "email") return "someone@example.com";
  if (schema.format === "uri") return "https://example.com/";
  const base = text.slice(0, 80) || key;
  const max = typeof schema.maxLength === "number" ? schema.maxLength : Infinity;
  const min = typeof schema.minLength === "number" ? schema.minLength : 0;
  return base.padEnd(min, ".").slice(0, max);
}
