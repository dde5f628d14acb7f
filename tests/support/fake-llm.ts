/**
 * A fake OpenAI-compatible server for tests and benchmarks: a real HTTP server on loopback that
 * answers POST /v1/chat/completions as the API does, with scriptable failures, latency and a gate
 * that holds answers, and a log of every request it received.
 */
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

/** Token usage to report; "counted" reports the prompt's and the answer's gpt-tokenizer counts. */
export interface Usage {
  prompt: number;
  completion: number;
}

/** What to answer: a completion built around `content`, or a raw HTTP response. */
export type FakeReply =
  | { kind: "completion"; content: string; usage: Usage | "counted" | false; finishReason: string }
  | { kind: "http"; status: number; headers: Record<string, string>; body: string };

export interface FakeBehaviour {
  /** Delay before answering, fixed or per request (`n` counts requests from 1 since the behaviour was set). */
  latencyMs?: number | ((body: ChatRequestBody, n: number) => number);
  /** Decides each answer; `replies.default` when absent. */
  respond?: (body: ChatRequestBody, n: number) => FakeReply | Promise<FakeReply>;
}

/** One request as received. `status` is 0 until answered, and stays 0 if the client left first. */
export interface FakeRequest {
  at: number;
  model: string | undefined;
  body: ChatRequestBody;
  status: number;
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

/** Starts the fake on 127.0.0.1 on a free port. */
export async function startFakeOpenAI(initial: FakeBehaviour = {}): Promise<FakeOpenAI> {
  let behaviour = initial;
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
    const entry: FakeRequest = { at, model: body.model, body, status: 0 };
    log(entry);
    const n = ++received;
    if (req.method !== "POST" || !req.url?.endsWith("/chat/completions")) {
      return answer(res, entry, { kind: "http", status: 404, headers: {}, body: errorBody("invalid_request_error", `No route ${req.url}`) });
    }
    if (!readable) {
      return answer(res, entry, { kind: "http", status: 400, headers: {}, body: errorBody("invalid_request_error", "Body is not JSON") });
    }
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
    answer(res, entry, reply, body, n);
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

function answer(res: ServerResponse, entry: FakeRequest, reply: FakeReply, body: ChatRequestBody = {}, n = 0): void {
  entry.status = reply.kind === "http" ? reply.status : 200;
  if (reply.kind === "http") {
    res.writeHead(reply.status, { "content-type": "application/json", ...reply.headers }).end(reply.body);
    return;
  }
  const usage =
    reply.usage === "counted"
      ? { prompt: countTokens((body.messages ?? []).map((m) => contentText(m.content)).join("\n")), completion: countTokens(reply.content) }
      : reply.usage;
  const completion = {
    id: `chatcmpl-fake-${n}`,
    object: "chat.completion",
    created: Math.floor(entry.at / 1000),
    model: body.model ?? "fake-model",
    choices: [{ index: 0, message: { role: "assistant", content: reply.content, refusal: null }, logprobs: null, finish_reason: reply.finishReason }],
    ...(usage && {
      usage: { prompt_tokens: usage.prompt, completion_tokens: usage.completion, total_tokens: usage.prompt + usage.completion },
    }),
  };
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(completion));
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
