/**
 * A fake of both providers' batch APIs on one loopback HTTP server, so that the real SDKs' batch
 * code is what the tests run: OpenAI's files (upload, content, list) and batches (create, retrieve,
 * list, cancel), and Anthropic's message batches (create, retrieve, list, cancel, results).
 * A batch answers its lines evenly over `processMs` (or holds them until `finish`), can be expired,
 * answers cancellation after `cancelMs`, and records which lines it answered: the bill. It also
 * answers live chat completions (the lane hands some tasks to the live lane), logged apart, and can
 * hold an upload or a create unanswered, so a test can kill the submitter in between.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import busboy from "busboy";
import { countTokens } from "gpt-tokenizer";
import { type ChatRequestBody, replies } from "./fake-llm";

export type FakeProviderKind = "openai" | "anthropic";

/** One request of a batch as received: its custom id and the chat body, in OpenAI's shape for both providers. */
export interface FakeBatchLine {
  customId: string;
  body: ChatRequestBody;
}

/** How one line is answered. */
export type FakeLineAnswer =
  | { kind: "ok"; text: string }
  | { kind: "error"; status: number; message: string; type?: string }
  | { kind: "expire" };

export interface FakeBatchBehaviour {
  /** From creation to the last line answered; lines are answered evenly over it. Infinity holds them until `finish`. */
  processMs?: number;
  /** From a cancel request to the batch's end. */
  cancelMs?: number;
  /** Each line's answer; the fake chat server's default (the schema's required properties) when absent. */
  answer?: (line: FakeBatchLine, provider: FakeProviderKind) => FakeLineAnswer;
  /** Errors refusing the whole batch at validation; none when absent. */
  validate?: (lines: FakeBatchLine[]) => string[];
  /** Answers every call 401. */
  unauthorized?: boolean;
  /** Creates the next batch, then answers 500 as if the connection broke after the provider accepted it. */
  failCreateOnce?: boolean;
  /** Lists each result line this many times (a reader that must count each once). */
  repeatResults?: number;
  /** Takes the next file upload (`upload`) or batch create (`create`, the batch is created) and answers nothing until `release`. */
  hold?: "upload" | "create";
}

type Phase = "validating" | "in_progress" | "cancelling" | "ended" | "failed";
type Outcome = { kind: "ok"; text: string; prompt: number; completion: number } | { kind: "error"; status: number; message: string; type: string } | { kind: "expired" } | { kind: "cancelled" };

export interface FakeBatchRecord {
  id: string;
  provider: FakeProviderKind;
  lines: FakeBatchLine[];
  metadata: Record<string, string>;
  createdAt: number;
  phase: Phase;
  /** How it ended: OpenAI's `completed`, `expired` or `cancelled`. */
  endedAs?: "completed" | "expired" | "cancelled";
  cancelAt?: number;
  errors: string[];
  outcomes: Map<string, Outcome>;
  outputFileId?: string;
  errorFileId?: string;
}

export interface FakeBatches {
  /** Base URL for the OpenAI SDK, ending in /v1. */
  openaiUrl: string;
  /** Base URL for the Anthropic SDK (it adds /v1 itself). */
  anthropicUrl: string;
  batches: FakeBatchRecord[];
  /** Every call: method and path. */
  calls: { method: string; path: string }[];
  /** Lines answered successfully, over every batch: what the provider would bill. */
  billedLines(): string[];
  setBehaviour(behaviour: FakeBatchBehaviour): void;
  /** Answers every remaining line of the batch (every batch when no id) now. */
  finish(id?: string): void;
  /** Ends the batch as expired: lines not yet answered expire. */
  expire(id: string): void;
  /** Live chat completions received: the document each was about. */
  live: ChatRequestBody[];
  /** Resolves once a request is being held (see `hold`). */
  held(): Promise<void>;
  /** Answers the held request (its client may be gone). */
  release(): void;
  close(): Promise<void>;
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
};

const newId = (prefix: string) => `${prefix}${randomBytes(8).toString("hex")}`;

export async function startFakeBatches(initial: FakeBatchBehaviour = {}): Promise<FakeBatches> {
  let behaviour = initial;
  const batches: FakeBatchRecord[] = [];
  const files = new Map<string, { filename: string; purpose: string; content: string; createdAt: number }>();
  const calls: { method: string; path: string }[] = [];
  const live: ChatRequestBody[] = [];
  let base = "";
  let holding: { reached: Promise<void>; reach(): void; released: Promise<void>; release(): void } | null = null;
  const newHold = () => {
    let reach!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((r) => (reach = r));
    const released = new Promise<void>((r) => (release = r));
    return { reached, reach, released, release };
  };
  /** Waits here when the behaviour holds this kind of request (once). */
  const maybeHold = async (kind: "upload" | "create") => {
    if (behaviour.hold !== kind) return;
    behaviour = { ...behaviour, hold: undefined };
    holding ??= newHold();
    holding.reach();
    await holding.released;
  };

  const answerOf = (line: FakeBatchLine, provider: FakeProviderKind): FakeLineAnswer => {
    if (behaviour.answer) return behaviour.answer(line, provider);
    const reply = replies.default(line.body);
    return { kind: "ok", text: reply.kind === "completion" ? reply.content : "" };
  };

  const answerLine = (batch: FakeBatchRecord, line: FakeBatchLine) => {
    const answer = answerOf(line, batch.provider);
    const prompt = countTokens((line.body.messages ?? []).map((m) => (typeof m.content === "string" ? m.content : JSON.stringify(m.content))).join("\n"));
    const outcome: Outcome =
      answer.kind === "ok"
        ? { kind: "ok", text: answer.text, prompt, completion: countTokens(answer.text) }
        : answer.kind === "error"
          ? { kind: "error", status: answer.status, message: answer.message, type: answer.type ?? "invalid_request_error" }
          : { kind: "expired" };
    batch.outcomes.set(line.customId, outcome);
  };

  const end = (batch: FakeBatchRecord, as: "completed" | "expired" | "cancelled") => {
    const rest: Outcome = as === "cancelled" ? { kind: "cancelled" } : { kind: "expired" };
    for (const line of batch.lines) if (!batch.outcomes.has(line.customId)) batch.outcomes.set(line.customId, rest);
    batch.phase = "ended";
    batch.endedAs = as;
    if (batch.provider === "openai") writeOpenAIFiles(batch);
  };

  /** Brings a batch up to date with the clock: answered lines, cancellation, the end. */
  const advance = (batch: FakeBatchRecord) => {
    if (batch.phase === "validating") batch.phase = "in_progress";
    if (batch.phase !== "in_progress" && batch.phase !== "cancelling") return;
    const now = Date.now();
    // A cancelling batch answers nothing after the moment its cancellation takes effect.
    const until = batch.phase === "cancelling" ? Math.min(now, batch.cancelAt ?? now) : now;
    const processMs = behaviour.processMs ?? 0;
    const due = processMs <= 0 ? batch.lines.length : Number.isFinite(processMs) ? Math.floor((batch.lines.length * (until - batch.createdAt)) / processMs) : 0;
    for (const line of batch.lines.slice(0, Math.min(due, batch.lines.length))) if (!batch.outcomes.has(line.customId)) answerLine(batch, line);
    if (batch.phase === "cancelling" && now >= (batch.cancelAt ?? now)) return end(batch, "cancelled");
    if (batch.phase === "in_progress" && batch.outcomes.size === batch.lines.length) end(batch, [...batch.outcomes.values()].some((o) => o.kind === "expired") ? "expired" : "completed");
  };

  const writeOpenAIFiles = (batch: FakeBatchRecord) => {
    const output: string[] = [];
    const errors: string[] = [];
    for (const line of batch.lines) {
      const o = batch.outcomes.get(line.customId);
      const id = newId("batch_req_");
      if (o?.kind === "ok") {
        output.push(JSON.stringify({ id, custom_id: line.customId, response: { status_code: 200, request_id: newId("req_"), body: completion(line, o) }, error: null }));
      } else if (o?.kind === "error") {
        errors.push(JSON.stringify({ id, custom_id: line.customId, response: { status_code: o.status, request_id: newId("req_"), body: { error: { message: o.message, type: o.type, param: null, code: null } } }, error: null }));
      } else {
        const code = o?.kind === "cancelled" ? "batch_cancelled" : "batch_expired";
        errors.push(JSON.stringify({ id, custom_id: line.customId, response: null, error: { code, message: code === "batch_cancelled" ? "Batch was cancelled." : "This request could not be executed before the completion window expired." } }));
      }
    }
    const store = (once: string[]) => {
      if (once.length === 0) return undefined;
      const lines = once.flatMap((l) => Array.from({ length: behaviour.repeatResults ?? 1 }, () => l));
      const id = newId("file-");
      files.set(id, { filename: `${batch.id}.jsonl`, purpose: "batch_output", content: `${lines.join("\n")}\n`, createdAt: Date.now() });
      return id;
    };
    const out = store(output);
    const err = store(errors);
    if (out) batch.outputFileId = out;
    if (err) batch.errorFileId = err;
  };

  const completion = (line: FakeBatchLine, o: Extract<Outcome, { kind: "ok" }>) => ({
    id: newId("chatcmpl-"),
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: line.body.model ?? "fake",
    choices: [{ index: 0, message: { role: "assistant", content: o.text }, finish_reason: "stop" }],
    usage: { prompt_tokens: o.prompt, completion_tokens: o.completion, total_tokens: o.prompt + o.completion, prompt_tokens_details: { cached_tokens: 0 } },
  });

  const counts = (batch: FakeBatchRecord) => {
    const outcomes = [...batch.outcomes.values()];
    const count = (kind: Outcome["kind"]) => outcomes.filter((o) => o.kind === kind).length;
    return { ok: count("ok"), error: count("error"), expired: count("expired"), cancelled: count("cancelled") };
  };

  const openaiBatch = (batch: FakeBatchRecord) => {
    const c = counts(batch);
    const seconds = (ms: number) => Math.floor(ms / 1000);
    const status = batch.phase === "ended" ? batch.endedAs : batch.phase;
    return {
      id: batch.id,
      object: "batch",
      endpoint: "/v1/chat/completions",
      errors: batch.errors.length > 0 ? { object: "list", data: batch.errors.map((message, i) => ({ code: "invalid_request", line: i + 1, message, param: null })) } : null,
      input_file_id: "file-input",
      completion_window: "24h",
      status,
      output_file_id: batch.outputFileId ?? null,
      error_file_id: batch.errorFileId ?? null,
      created_at: seconds(batch.createdAt),
      expires_at: seconds(batch.createdAt + 86_400_000),
      request_counts: { total: batch.lines.length, completed: c.ok, failed: c.error + c.expired + c.cancelled },
      metadata: batch.metadata,
    };
  };

  const anthropicBatch = (batch: FakeBatchRecord) => {
    const c = counts(batch);
    const ended = batch.phase === "ended";
    return {
      id: batch.id,
      type: "message_batch",
      processing_status: ended ? "ended" : batch.phase === "cancelling" ? "canceling" : "in_progress",
      request_counts: { processing: batch.lines.length - batch.outcomes.size, succeeded: c.ok, errored: c.error, canceled: c.cancelled, expired: c.expired },
      created_at: new Date(batch.createdAt).toISOString(),
      expires_at: new Date(batch.createdAt + 86_400_000).toISOString(),
      ended_at: ended ? new Date().toISOString() : null,
      archived_at: null,
      cancel_initiated_at: batch.cancelAt === undefined ? null : new Date(batch.cancelAt).toISOString(),
      results_url: ended ? `${base}/v1/messages/batches/${batch.id}/results` : null,
    };
  };

  const anthropicResult = (batch: FakeBatchRecord, line: FakeBatchLine) => {
    const o = batch.outcomes.get(line.customId) ?? { kind: "expired" };
    const result =
      o.kind === "ok"
        ? {
            type: "succeeded",
            message: {
              id: newId("msg_"),
              type: "message",
              role: "assistant",
              model: line.body.model ?? "fake",
              content: [{ type: "text", text: o.text }],
              stop_reason: "end_turn",
              stop_sequence: null,
              usage: { input_tokens: o.prompt, output_tokens: o.completion, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 },
            },
          }
        : o.kind === "error"
          ? { type: "errored", error: { type: "error", error: { type: o.type, message: o.message } } }
          : { type: o.kind === "cancelled" ? "canceled" : "expired" };
    return JSON.stringify({ custom_id: line.customId, result });
  };

  const create = (provider: FakeProviderKind, lines: FakeBatchLine[], metadata: Record<string, string>): FakeBatchRecord => {
    const batch: FakeBatchRecord = {
      id: newId(provider === "openai" ? "batch_" : "msgbatch_"),
      provider,
      lines,
      metadata,
      createdAt: Date.now(),
      phase: "validating",
      errors: behaviour.validate?.(lines) ?? [],
      outcomes: new Map(),
    };
    if (batch.errors.length > 0) batch.phase = "failed";
    batches.push(batch);
    return batch;
  };

  const find = (id: string | undefined) => batches.find((b) => b.id === id);

  const cancel = (batch: FakeBatchRecord) => {
    if (batch.phase === "in_progress" || batch.phase === "validating") {
      batch.phase = "cancelling";
      batch.cancelAt = Date.now() + (behaviour.cancelMs ?? 0);
    }
    advance(batch);
  };

  /** Lists newest first, paged by `after` (OpenAI) or `after_id` (Anthropic). */
  const page = (url: URL, provider: FakeProviderKind, shape: (b: FakeBatchRecord) => unknown) => {
    const all = batches.filter((b) => b.provider === provider).reverse();
    const after = url.searchParams.get(provider === "openai" ? "after" : "after_id");
    const start = after ? all.findIndex((b) => b.id === after) + 1 : 0;
    const limit = Number(url.searchParams.get("limit") ?? 20);
    const slice = all.slice(start, start + limit);
    for (const b of slice) advance(b);
    return { object: "list", data: slice.map(shape), first_id: slice[0]?.id ?? null, last_id: slice.at(-1)?.id ?? null, has_more: start + limit < all.length };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", base);
    const path = url.pathname;
    const method = req.method ?? "GET";
    calls.push({ method, path });
    if (behaviour.unauthorized) return json(res, 401, { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } });
    let m: RegExpExecArray | null;

    if (method === "POST" && path === "/v1/chat/completions") {
      const body = JSON.parse(await readText(req)) as ChatRequestBody;
      live.push(body);
      const reply = replies.default(body);
      const content = reply.kind === "completion" ? reply.content : "";
      const prompt = countTokens((body.messages ?? []).map((m) => (typeof m.content === "string" ? m.content : "")).join("\n"));
      return json(res, 200, completion({ customId: "", body }, { kind: "ok", text: content, prompt, completion: countTokens(content) }));
    }
    if (method === "POST" && path === "/v1/files") {
      const { fields, file } = await readMultipart(req);
      await maybeHold("upload");
      const id = newId("file-");
      files.set(id, { filename: file.name, purpose: fields.purpose ?? "", content: file.content, createdAt: Date.now() });
      return json(res, 200, { id, object: "file", bytes: Buffer.byteLength(file.content), created_at: Math.floor(Date.now() / 1000), filename: file.name, purpose: fields.purpose, status: "processed" });
    }
    if (method === "GET" && (m = /^\/v1\/files\/([^/]+)\/content$/.exec(path))) {
      const file = files.get(m[1] ?? "");
      if (!file) return json(res, 404, { error: { message: "No such file", type: "invalid_request_error" } });
      return res.writeHead(200, { "content-type": "application/octet-stream" }).end(file.content);
    }
    if (method === "POST" && path === "/v1/batches") {
      const body = JSON.parse(await readText(req)) as { input_file_id: string; metadata?: Record<string, string> };
      const file = files.get(body.input_file_id);
      if (!file) return json(res, 404, { error: { message: `No such file: ${body.input_file_id}`, type: "invalid_request_error" } });
      const lines = file.content
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => JSON.parse(l) as { custom_id: string; body: ChatRequestBody })
        .map((l) => ({ customId: l.custom_id, body: l.body }));
      const created = create("openai", lines, body.metadata ?? {});
      await maybeHold("create");
      if (behaviour.failCreateOnce) {
        behaviour = { ...behaviour, failCreateOnce: false };
        return json(res, 500, { error: { message: "The server had an error", type: "server_error" } });
      }
      return json(res, 200, openaiBatch(created));
    }
    if (method === "GET" && path === "/v1/batches") return json(res, 200, page(url, "openai", openaiBatch));
    if ((m = /^\/v1\/batches\/([^/]+)(\/cancel)?$/.exec(path))) {
      const batch = find(m[1]);
      if (!batch) return json(res, 404, { error: { message: "No such batch", type: "invalid_request_error" } });
      if (m[2] && method === "POST") cancel(batch);
      else advance(batch);
      return json(res, 200, openaiBatch(batch));
    }

    if (method === "POST" && path === "/v1/messages/batches") {
      const body = JSON.parse(await readText(req)) as { requests: { custom_id: string; params: AnthropicParams }[] };
      const lines = body.requests.map((r) => ({ customId: r.custom_id, body: fromAnthropic(r.params) }));
      const created = create("anthropic", lines, {});
      if (behaviour.failCreateOnce) {
        behaviour = { ...behaviour, failCreateOnce: false };
        return json(res, 500, { type: "error", error: { type: "api_error", message: "Internal server error" } });
      }
      return json(res, 200, anthropicBatch(created));
    }
    if (method === "GET" && path === "/v1/messages/batches") {
      const listed = page(url, "anthropic", anthropicBatch);
      return json(res, 200, { data: listed.data, has_more: listed.has_more, first_id: listed.first_id, last_id: listed.last_id });
    }
    if ((m = /^\/v1\/messages\/batches\/([^/]+)(\/cancel|\/results)?$/.exec(path))) {
      const batch = find(m[1]);
      if (!batch) return json(res, 404, { type: "error", error: { type: "not_found_error", message: "No such batch" } });
      if (m[2] === "/cancel" && method === "POST") cancel(batch);
      else advance(batch);
      if (m[2] === "/results") {
        if (batch.phase !== "ended") return json(res, 400, { type: "error", error: { type: "invalid_request_error", message: "Batch has not ended" } });
        const times = behaviour.repeatResults ?? 1;
        const out = batch.lines.flatMap((l) => Array.from({ length: times }, () => anthropicResult(batch, l)));
        return res.writeHead(200, { "content-type": "application/binary" }).end(`${out.join("\n")}\n`);
      }
      return json(res, 200, anthropicBatch(batch));
    }
    json(res, 404, { error: { message: `No route ${method} ${path}`, type: "invalid_request_error" } });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => json(res, 500, { error: { message: String(err), type: "server_error" } }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    openaiUrl: `${base}/v1`,
    anthropicUrl: base,
    batches,
    calls,
    billedLines: () => batches.flatMap((b) => [...b.outcomes.entries()].filter(([, o]) => o.kind === "ok").map(([id]) => id)),
    setBehaviour(next) {
      behaviour = next;
    },
    finish(id) {
      for (const batch of batches.filter((b) => id === undefined || b.id === id)) {
        advance(batch);
        if (batch.phase !== "in_progress" && batch.phase !== "cancelling") continue;
        for (const line of batch.lines) if (!batch.outcomes.has(line.customId)) answerLine(batch, line);
        end(batch, "completed");
      }
    },
    live,
    held: async () => {
      holding ??= newHold();
      await holding.reached;
    },
    release() {
      holding?.release();
      holding = null;
    },
    expire(id) {
      const batch = find(id);
      if (batch && batch.phase !== "ended" && batch.phase !== "failed") end(batch, "expired");
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

interface AnthropicParams {
  model: string;
  system?: string | { text: string }[];
  messages: { role: string; content: unknown }[];
  max_tokens: number;
}

/** Anthropic's request in OpenAI's shape, so one answering function serves both. */
function fromAnthropic(params: AnthropicParams): ChatRequestBody {
  const system = typeof params.system === "string" ? params.system : (params.system ?? []).map((s) => s.text).join("");
  return { model: params.model, messages: [{ role: "system", content: system }, ...params.messages], max_completion_tokens: params.max_tokens };
}

function readText(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function readMultipart(req: IncomingMessage): Promise<{ fields: Record<string, string>; file: { name: string; content: string } }> {
  return new Promise((resolve, reject) => {
    const fields: Record<string, string> = {};
    const file: { name: string; content: string } = { name: "", content: "" };
    const parser = busboy({ headers: req.headers });
    parser.on("field", (name, value) => {
      fields[name] = value;
    });
    parser.on("file", (_name, stream, info) => {
      const chunks: Buffer[] = [];
      file.name = info.filename ?? "upload.jsonl";
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        file.content = Buffer.concat(chunks).toString("utf8");
      });
    });
    parser.on("close", () => resolve({ fields, file }));
    parser.on("error", reject);
    req.pipe(parser);
  });
}
