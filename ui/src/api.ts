/** The REST API as the UI uses it (README "API"): typed fetches that turn every error answer into an `ApiError`. */
import { session } from "./session";
import type { AnalysisMode, BatchStatus, Outcome, ProviderBatchView, ProviderKind, Substate, UsageView } from "../../src/vocabulary";

export interface Counts {
  total: number;
  pending: number;
  running: number;
  succeeded: number;
  failed: number;
  cancelled: number;
}

export interface Batch {
  id: string;
  name: string;
  tenant: string;
  status: BatchStatus;
  substate: Substate;
  queue_position: number | null;
  priority: number;
  version: number;
  run_id: number;
  allowed_actions: string[];
  progress: Counts;
  staging: Counts | null;
  analysis: { instructions?: string; provider?: ProviderKind; model?: string; mode?: AnalysisMode } | null;
  document_count: number;
  last_error: string | null;
  /** What the batch will cost at most, from the moment its staging finished. */
  estimate: Estimate | null;
  usage: UsageView;
  budget_usd: number | null;
  reserved_usd: number;
  pause_reason: "user" | "budget" | null;
  created_at: string;
  updated_at: string;
  /** Batch lane only: the provider batches of the batch, newest first. */
  provider_batches?: ProviderBatchView[];
}


export interface Estimate {
  model: string;
  documents: number;
  cached_documents: number;
  requests: number;
  input_tokens: number;
  requests_max: number;
  output_tokens_max: number | null;
  cost_usd_max: number | null;
  map_reduce_documents: number;
  price_checked_at: string | null;
  note: string | null;
}

export interface BatchDocument {
  id: string;
  name: string;
  mime_type: string;
  size_bytes: number;
  stage_status: string;
  stage_error: string | null;
  token_count: number | null;
  chunk_count: number | null;
}

export interface HistoryEntry {
  seq: number;
  outcome: Outcome;
  event_type: string;
  source: string;
  /** The API key that asked (`name (id)`); null without keys and for workers and the system. */
  actor: string | null;
  from: string;
  to: string;
  reason: string | null;
  context: unknown;
  created_at: string;
}

export interface Result {
  document_id: string;
  name: string;
  status: string;
  output: unknown;
  error: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  latency_ms: number | null;
  attempts: number | null;
  run_id: number;
  cost_usd: number | null;
  cached: boolean;
  strategy: string | null;
}

export interface Queue {
  max_running_batches: number;
  running: Batch[];
  queued: Batch[];
}

/** Every user action, in the order the table shows them (the server's ACTIONS). */
export const ACTIONS = ["stage", "run", "pause", "resume", "cancel", "reset", "restage", "rerun", "retry-failed", "delete"] as const;
export type Action = (typeof ACTIONS)[number];

/** An answer that was not a success; `status` 0 means the server could not be reached at all. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }

  get unreachable(): boolean {
    return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

export const asApiError = (err: unknown): ApiError =>
  err instanceof ApiError ? err : new ApiError(0, "client_error", err instanceof Error ? err.message : String(err));

async function call<T>(path: string, init?: RequestInit): Promise<T> {
  let res: Response;
  const key = session.key();
  try {
    res = await fetch(path, {
      ...init,
      headers: { accept: "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}), ...init?.headers },
    });
  } catch {
    throw new ApiError(0, "unreachable", "The Tranche server cannot be reached");
  }
  const body = (await res.json().catch(() => null)) as { success?: boolean; code?: string; error?: string } | null;
  if (res.status === 401) session.required(key ? "Your key is no longer accepted (revoked?). Give a valid one." : undefined);
  if (!res.ok || body === null) {
    throw new ApiError(res.status, body?.code ?? "bad_answer", body?.error ?? `The server answered ${res.status}`);
  }
  return body as T;
}

const json = (body: unknown): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

const REASON = "requested from the web UI";
/** Rows one page of documents (and of their results) shows; a batch may hold 100,000. */
export const PAGE = 100;
export const HISTORY_PAGE = 50;
/** A `before_seq` past any batch's last entry: the newest page. */
const LATEST = 2 ** 31 - 1;

/** A page as the API answers it: the rows, and where the next page starts (null: this was the last). */
export type Page<K extends string, T> = { [key in K]: T[] } & { next_after_position: number | null };

export const api = {
  listBatches: () => call<{ batches: Batch[]; total: number }>("/api/batches?limit=200"),
  getBatch: (id: string) => call<{ batch: Batch }>(`/api/batches/${id}`).then((r) => r.batch),
  /** One page of documents in order, after position `after` (-1: from the start). */
  documents: (id: string, after = -1, limit = PAGE) =>
    call<Page<"documents", BatchDocument>>(`/api/batches/${id}/documents?after_position=${after}&limit=${limit}`),
  /** The results of the same page of documents. */
  results: (id: string, after = -1, limit = PAGE) =>
    call<Page<"results", Result>>(`/api/batches/${id}/results?format=json&after_position=${after}&limit=${limit}`),
  /** One page of history, newest first: the entries before `beforeSeq` (none: the latest). */
  history: (id: string, beforeSeq?: number, limit = HISTORY_PAGE) =>
    call<{ history: HistoryEntry[] }>(`/api/batches/${id}/history?limit=${limit}&before_seq=${beforeSeq ?? LATEST}`).then((r) => r.history),
  queue: () => call<Queue>("/api/queue"),
  reorder: (batchId: string, position: number) => call<Queue>("/api/queue/reorder", json({ batch_id: batchId, position })),
  act: (id: string, action: Action) =>
    action === "delete"
      ? call<{ success: true }>(`/api/batches/${id}`, { method: "DELETE" })
      : call<{ success: true; batch: Batch }>(`/api/batches/${id}/action`, json({ action, context: { reason: REASON } })),
  /** A new budget in USD, or none (null). */
  setBudget: (id: string, budgetUsd: number | null) =>
    call<{ success: true; batch: Batch }>(`/api/batches/${id}/budget`, json({ budget_usd: budgetUsd })).then((r) => r.batch),
  /** Multipart, so that many files of any type go up as they are. */
  create: (form: FormData) => call<{ batch: Batch }>("/api/batches/save", { method: "POST", body: form }).then((r) => r.batch),
};

export const resultsUrl = (id: string, format: "jsonl" | "csv") => `/api/batches/${id}/results?format=${format}`;
