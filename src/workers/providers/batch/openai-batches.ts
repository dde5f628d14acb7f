/**
 * OpenAI's Batch API over the official SDK: the lines as a JSONL file of `/v1/chat/completions`
 * requests (`files.create`, purpose `batch`), one batch per file with a 24 h window, results read
 * from the output and error files. The metadata attached at creation is what finds a batch that was
 * created but never recorded.
 */
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import OpenAI, { toFile } from "openai";
import type { Batch } from "openai/resources/batches";
import { httpFailure } from "../retry";
import type { BatchClient, BatchLimits, BatchRequestLine, LineResult, ProviderBatch, ReportedStatus } from "./lane";

/** OpenAI's documented ceilings for one batch input file. */
export const OPENAI_BATCH_LIMITS: BatchLimits = { maxRequests: 50_000, maxBytes: 200 * 1024 * 1024 };

const ENDPOINT = "/v1/chat/completions";

export interface OpenAIBatchOptions {
  apiKey?: string;
  baseURL?: string;
  timeoutMs: number;
  limits?: BatchLimits;
}

export function createOpenAIBatchClient(opts: OpenAIBatchOptions): BatchClient {
  const baseURL = opts.baseURL ?? process.env.OPENAI_BASE_URL;
  const apiKey = opts.apiKey ?? process.env.OPENAI_API_KEY ?? (baseURL ? "unused" : undefined);
  const client = new OpenAI({
    ...(apiKey !== undefined && { apiKey }),
    ...(baseURL !== undefined && { baseURL }),
    maxRetries: 2,
    timeout: opts.timeoutMs,
  });
  const limits = opts.limits ?? OPENAI_BATCH_LIMITS;
  const encode = (line: BatchRequestLine) => `${JSON.stringify(requestLine(line))}\n`;

  return {
    kind: "openai",
    limits,
    lineBytes: (line) => Buffer.byteLength(encode(line)),
    async submit(lines, metadata) {
      const name = `tranche-${Object.values(metadata).join("-")}.jsonl`;
      const file = await client.files.create({ file: await toFile(Buffer.from(lines.map(encode).join("")), name), purpose: "batch" });
      // Never retried by the SDK: a create that reached the provider but lost its answer would be paid twice.
      // The lane looks for it by its metadata (`find`) before it submits again.
      return normalise(await client.batches.create({ input_file_id: file.id, endpoint: ENDPOINT, completion_window: "24h", metadata }, { maxRetries: 0 }));
    },
    retrieve: async (id) => normalise(await client.batches.retrieve(id)),
    cancel: async (id) => normalise(await client.batches.cancel(id)),
    async find(query) {
      const found: ProviderBatch[] = [];
      // Listed newest first, so the walk stops at the first batch older than the submission.
      for await (const batch of client.batches.list({ limit: 100 })) {
        if (batch.created_at * 1000 < query.since.getTime()) break;
        if (Object.entries(query.metadata).every(([k, v]) => batch.metadata?.[k] === v)) found.push(normalise(batch));
      }
      return found;
    },
    async *results(id) {
      const batch = await client.batches.retrieve(id);
      for (const fileId of [batch.output_file_id, batch.error_file_id]) {
        if (!fileId) continue;
        const response = await client.files.content(fileId);
        if (!response.body) continue;
        const lines = createInterface({ input: Readable.fromWeb(response.body as WebReadableStream), crlfDelay: Infinity });
        for await (const text of lines) if (text.trim() !== "") yield parseResultLine(text);
      }
    },
  };
}

function requestLine(line: BatchRequestLine) {
  return {
    custom_id: line.customId,
    method: "POST",
    url: ENDPOINT,
    body: {
      model: line.model,
      messages: [
        { role: "system", content: line.system },
        { role: "user", content: line.user },
      ],
      ...(line.schema && { response_format: { type: "json_schema", json_schema: { name: "analysis", schema: line.schema, strict: false } } }),
      ...(line.temperature !== undefined && { temperature: line.temperature }),
      ...(line.maxTokens !== undefined && { max_completion_tokens: line.maxTokens }),
    },
  };
}

const STATUSES: Record<Batch["status"], ReportedStatus> = {
  validating: "validating",
  in_progress: "in_progress",
  finalizing: "finalizing",
  cancelling: "cancelling",
  completed: "ended",
  expired: "ended",
  cancelled: "ended",
  failed: "failed",
};

function normalise(batch: Batch): ProviderBatch {
  const counts = batch.request_counts ?? { total: 0, completed: 0, failed: 0 };
  return {
    id: batch.id,
    status: STATUSES[batch.status],
    providerStatus: batch.status,
    counts: { total: counts.total, succeeded: counts.completed, failed: counts.failed },
    createdAt: new Date(batch.created_at * 1000),
    expiresAt: batch.expires_at ? new Date(batch.expires_at * 1000) : null,
    errors: (batch.errors?.data ?? []).map((e) => [e.line === null || e.line === undefined ? "" : `line ${e.line}: `, e.message ?? e.code ?? "invalid"].join("")),
    metadata: { ...(batch.metadata ?? {}) },
  };
}

interface OutputLine {
  custom_id: string;
  response: { status_code: number; body: Record<string, unknown> } | null;
  error: { code?: string | null; message?: string | null } | null;
}

/** One line of an output or error file. Expired and cancelled requests are in the error file with their own codes. */
export function parseResultLine(text: string): LineResult {
  const line = JSON.parse(text) as OutputLine;
  const customId = line.custom_id;
  if (line.error) {
    if (line.error.code === "batch_expired") return { customId, kind: "expired" };
    if (line.error.code === "batch_cancelled") return { customId, kind: "cancelled" };
    return { customId, kind: "errored", message: `openai batch: ${line.error.message ?? line.error.code ?? "error"}`, retryable: false };
  }
  const response = line.response;
  if (response === null) return { customId, kind: "errored", message: "openai batch: a line with neither response nor error", retryable: false };
  if (response.status_code !== 200) {
    const message = (response.body.error as { message?: string } | undefined)?.message ?? `HTTP ${response.status_code}`;
    const failure = httpFailure(response.status_code, undefined, `openai batch: ${message}`);
    return { customId, kind: "errored", message: failure.message, status: response.status_code, retryable: failure.retryable };
  }
  const body = response.body as {
    model?: string;
    choices?: { message?: { content?: string | null } }[];
    usage?: { prompt_tokens?: number; completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } };
  };
  return {
    customId,
    kind: "succeeded",
    text: body.choices?.[0]?.message?.content ?? "",
    model: body.model ?? "",
    usage: {
      inputTokens: body.usage?.prompt_tokens ?? 0,
      cachedInputTokens: body.usage?.prompt_tokens_details?.cached_tokens ?? 0,
      outputTokens: body.usage?.completion_tokens ?? 0,
    },
  };
}
