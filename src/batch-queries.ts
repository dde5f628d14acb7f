/**
 * The read side: batches, documents, history and the queue as the API shows them.
 * Reads take no locks and never write; `allowed_actions` is always derived from the stored
 * snapshot by the machine.
 */
import type { Batch } from "./generated/prisma/client";
import { IncompatibleSnapshotError, NotFoundError, UnavailableError } from "./errors";
import { allowedActions, type StoredSnapshot } from "./machines/batch.transition";
import { loadSnapshot } from "./stored-snapshot";
import type { PrismaClient } from "./db";
import type { BatchProviderKind, ProviderBatchStatus, ProviderBatchView, UsageView } from "./vocabulary";

export interface BatchView {
  id: string;
  name: string;
  tenant: string;
  status: string;
  substate: string | null;
  queue_position: number | null;
  priority: number;
  version: number;
  run_id: number;
  allowed_actions: string[];
  progress: { total: number; pending: number; running: number; succeeded: number; failed: number; cancelled: number };
  staging: unknown;
  analysis: unknown;
  document_count: number;
  last_error: string | null;
  /** What the batch will cost at most, computed once when its staging finished; null before. */
  estimate: unknown;
  usage: UsageView;
  /** Most the batch may cost (USD); null: no budget. */
  budget_usd: number | null;
  /** What tasks in flight hold of the budget: the most they may still cost. */
  reserved_usd: number;
  /** Why a PAUSED batch is paused (`user` or `budget`); null otherwise. */
  pause_reason: string | null;
  created_at: string;
  updated_at: string;
  /** In a list only: the batch's snapshot cannot be read by this install (no actions are offered). */
  snapshot_error?: { code: string; error: string } & Record<string, unknown>;
  /** Batch lane only (`analysis.mode: "batch"`): the run's provider batches, newest first. */
  provider_batches?: ProviderBatchView[];
}

/** Most provider batches a batch view lists (a run has a few; a long-lived batch may have had many). */
const PROVIDER_BATCHES_SHOWN = 50;

/** What the batch's current results cost, updated with every settled task. */
interface DocumentRow {
  id: string;
  position: number;
  name: string;
  mime_type: string;
  size_bytes: number;
  sha256: string;
  stage_run_id: number | null;
  stage_status: string | null;
  stage_error: string | null;
  token_count: number | null;
  chunk_count: number | null;
  created_at: Date;
}

interface ResultRow {
  document_id: string;
  name: string;
  position: number;
  mime_type: string;
  stage_status: string | null;
  stage_error: string | null;
  token_count: number | null;
  status: string | null;
  output: unknown;
  error: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  latency_ms: number | null;
  attempts: number | null;
  run_id: number | null;
  strategy: string | null;
  cached: boolean | null;
  requests: number | null;
  cached_input_tokens: number | null;
  cost_usd: number | null;
}

/** One document's result as the results export shows it. */
export interface ResultRecord {
  document_id: string;
  name: string;
  mime_type: string;
  /** The task's status (succeeded, failed, cancelled, pending, running), or for a document never analysed: staged, staging, stage_failed or not_staged. */
  status: string;
  output: unknown;
  error: string | null;
  /**
   * What the document's analysis billed, summed over its tasks since the last reset, restage or
   * rerun (a retry's and the failed try's alike), so that the results add up to the batch's `usage`.
   */
  requests: number | null;
  input_tokens: number | null;
  cached_input_tokens: number | null;
  output_tokens: number | null;
  /** Null when a task of it ran on a model with no known price. */
  cost_usd: number | null;
  /** Answered from the result cache rather than by the provider. */
  cached: boolean;
  /** How the latest task analysed it: `single` or `map_reduce`. */
  strategy: string | null;
  document_tokens: number | null;
  latency_ms: number | null;
  attempts: number | null;
  run_id: number | null;
}

/** Where a document without a task stands: it must not read as if it had been analysed. */
function notAnalysed(stageStatus: string | null): string {
  switch (stageStatus) {
    case "succeeded":
      return "staged";
    case "failed":
      return "stage_failed";
    case "pending":
    case "running":
      return "staging";
    case null:
    default:
      return "not_staged";
  }
}

export function presentBatch(b: Batch): BatchView {
  return present(b, allowedActions(loadSnapshot(b.id, b.snapshot as StoredSnapshot, b.machineVersion).snapshot));
}

/**
 * A batch as a list shows it: one whose snapshot a newer machine wrote is listed with the reason
 * and no actions, rather than failing the whole list (reading it alone still answers 409).
 */
export function presentListedBatch(b: Batch): BatchView {
  try {
    return presentBatch(b);
  } catch (err) {
    if (!(err instanceof IncompatibleSnapshotError)) throw err;
    return { ...present(b, []), snapshot_error: { code: err.code, error: err.message, ...err.details } };
  }
}

function present(b: Batch, allowed: string[]): BatchView {
  return {
    id: b.id,
    name: b.name,
    tenant: b.tenant,
    status: b.status,
    substate: b.substate,
    queue_position: b.queuePosition,
    priority: b.priority,
    version: b.version,
    run_id: b.runId,
    allowed_actions: allowed,
    progress: { total: b.total, pending: b.pending, running: b.running, succeeded: b.succeeded, failed: b.failed, cancelled: b.cancelled },
    staging: b.stagingProgress,
    analysis: b.analysis,
    document_count: b.documentCount,
    last_error: b.lastError,
    estimate: b.estimate ?? null,
    usage: {
      requests: b.usageRequests,
      input_tokens: Number(b.usageInputTokens),
      cached_input_tokens: Number(b.usageCachedInputTokens),
      output_tokens: Number(b.usageOutputTokens),
      cost_usd: b.usageUnpriced > 0 ? null : b.usageCostUsd,
      saved_usd: b.savedUsd,
      note: b.usageUnpriced > 0 ? `${b.usageUnpriced} tasks ran on a model with no known price: their cost is unknown (set analysis.price)` : null,
    },
    budget_usd: b.budgetUsd,
    reserved_usd: b.reservedUsd,
    pause_reason: b.pauseReason,
    created_at: b.createdAt.toISOString(),
    updated_at: b.updatedAt.toISOString(),
  };
}

export function createBatchQueries(prisma: PrismaClient) {
  async function getBatch(id: string): Promise<BatchView> {
    const b = await prisma.batch.findUnique({ where: { id } });
    if (!b) throw new NotFoundError("Batch", id);
    const view = presentBatch(b);
    if ((b.analysis as { mode?: string } | null)?.mode !== "batch") return view;
    const parts = await prisma.providerBatch.findMany({ where: { batchId: id }, orderBy: { createdAt: "desc" }, take: PROVIDER_BATCHES_SHOWN });
    view.provider_batches = parts.map((p) => ({
      id: p.id,
      provider: p.provider as BatchProviderKind,
      provider_id: p.providerId,
      run_id: p.runId,
      status: p.status as ProviderBatchStatus,
      provider_status: p.providerStatus,
      tasks: p.taskCount,
      request_counts: p.requestCounts as ProviderBatchView["request_counts"],
      errors: p.errors as string[] | null,
      created_at: p.createdAt.toISOString(),
      expires_at: p.expiresAt?.toISOString() ?? null,
      ended_at: p.endedAt?.toISOString() ?? null,
    }));
    return view;
  }

  /** The tenant a batch belongs to, or null when there is no such batch. */
  async function tenantOf(id: string): Promise<string | null> {
    const b = await prisma.batch.findUnique({ where: { id }, select: { tenant: true } });
    return b?.tenant ?? null;
  }

  /** `tenant` confines the list to one tenant; undefined lists every tenant's. */
  async function listBatches(filter: { status?: string[]; limit: number; offset: number; tenant?: string }) {
    const where = {
      ...(filter.status?.length ? { status: { in: filter.status } } : {}),
      ...(filter.tenant !== undefined ? { tenant: filter.tenant } : {}),
    };
    const [rows, total] = await Promise.all([
      prisma.batch.findMany({
        where,
        orderBy: [{ createdAt: "desc" }, { id: "asc" }],
        take: filter.limit,
        skip: filter.offset,
      }),
      prisma.batch.count({ where }),
    ]);
    return { batches: rows.map((b) => presentListedBatch(b)), total, limit: filter.limit, offset: filter.offset };
  }

  /**
   * One page of a batch's documents in position order, from just after `afterPosition`; the
   * chunks' count is taken in the database so their text is never read here.
   */
  async function getDocuments(batchId: string, page: { afterPosition: number; limit: number }) {
    await assertBatch(batchId);
    const rows = await prisma.$queryRaw<DocumentRow[]>`
      SELECT id::text, position, name, mime_type, size_bytes, sha256, stage_run_id, stage_status, stage_error, token_count,
             CASE WHEN jsonb_typeof(chunks) = 'array' THEN jsonb_array_length(chunks) END AS chunk_count, created_at
      FROM documents WHERE batch_id = ${batchId}::uuid AND position > ${page.afterPosition}
      ORDER BY position LIMIT ${page.limit}`;
    const documents = rows.map((d) => ({ ...d, created_at: d.created_at.toISOString() }));
    const last = rows.length === page.limit ? rows[rows.length - 1] : undefined;
    return { documents, next_after_position: last ? last.position : null };
  }

  /** One page of history: oldest first after `afterSeq`, or newest first before `beforeSeq`. */
  async function getHistory(batchId: string, page: { afterSeq: number; beforeSeq?: number; limit: number }) {
    await assertBatch(batchId);
    const rows = await prisma.historyEntry.findMany({
      where: { batchId, seq: page.beforeSeq !== undefined ? { lt: page.beforeSeq } : { gt: page.afterSeq } },
      orderBy: { seq: page.beforeSeq !== undefined ? "desc" : "asc" },
      take: page.limit,
    });
    return rows.map((h) => ({
      seq: h.seq,
      outcome: h.outcome,
      event_type: h.eventType,
      source: h.source,
      actor: h.actor,
      from: h.fromState,
      to: h.toState,
      version: h.version,
      reason: h.reason,
      context: h.context,
      event: h.event,
      created_at: h.createdAt.toISOString(),
    }));
  }

  /**
   * The states a batch went through (accepted entries, repeats folded), the latest `limit` of
   * them, computed in the database so no history row is read here; `omitted` earlier steps.
   * An accepted entry that stays in its state can never start a step (the one before it ended in
   * that state), so only the state-changing ones are read, off their own partial index.
   */
  async function getPath(batchId: string, limit = 200): Promise<{ states: string[]; omitted: number }> {
    const rows = await prisma.$queryRaw<{ to_state: string; steps: number }[]>`
      SELECT to_state, (count(*) OVER ())::int AS steps FROM (
        SELECT seq, to_state, lag(to_state) OVER (ORDER BY seq) AS previous
        FROM history WHERE batch_id = ${batchId}::uuid AND outcome = 'accepted' AND from_state <> to_state AND to_state <> ''
      ) h WHERE previous IS DISTINCT FROM to_state ORDER BY seq DESC LIMIT ${limit}`;
    const steps = rows[0]?.steps ?? 0;
    return { states: rows.map((r) => r.to_state).reverse(), omitted: Math.max(0, steps - rows.length) };
  }

  async function getQueue(maxRunning: number, tenant?: string) {
    const rows = await prisma.batch.findMany({
      where: { status: "ANALYZING", ...(tenant !== undefined ? { tenant } : {}) },
      orderBy: [{ queuePosition: "asc" }, { updatedAt: "asc" }],
    });
    const views = rows.map((b) => presentBatch(b));
    return {
      max_running_batches: maxRunning,
      running: views.filter((v) => v.substate === "running"),
      queued: views.filter((v) => v.substate === "queued"),
    };
  }

  /**
   * One result per document, in document order, read in pages so a batch of any size
   * streams in constant memory: the document's latest task (a retry run's result replaces the
   * failed one), or why it never reached analysis.
   */
  /** One page of results in document order, from just after `afterPosition`. */
  async function resultsPage(batchId: string, afterPosition: number, limit: number) {
    const rows = await prisma.$queryRaw<ResultRow[]>`
      SELECT d.id::text AS document_id, d.name, d.position, d.mime_type, d.stage_status, d.stage_error, d.token_count,
             t.status, t.output, t.error, t.latency_ms, t.attempts, t.run_id, t.strategy, t.cached,
             u.requests, u.input_tokens, u.cached_input_tokens, u.output_tokens, u.cost_usd
      FROM documents d
      LEFT JOIN LATERAL (SELECT * FROM tasks WHERE tasks.document_id = d.id ORDER BY run_id DESC LIMIT 1) t ON true
      LEFT JOIN LATERAL (
        SELECT coalesce(sum(requests), 0)::int AS requests, coalesce(sum(input_tokens), 0)::int AS input_tokens,
               coalesce(sum(cached_input_tokens), 0)::int AS cached_input_tokens, coalesce(sum(output_tokens), 0)::int AS output_tokens,
               CASE WHEN bool_or(cost_usd IS NULL AND status IN ('succeeded', 'failed')) THEN NULL
                    ELSE round(coalesce(sum(cost_usd), 0)::numeric, 8)::float8 END AS cost_usd
        FROM tasks WHERE tasks.document_id = d.id AND tasks.status IN ('succeeded', 'failed')
      ) u ON t.status IS NOT NULL
      WHERE d.batch_id = ${batchId}::uuid AND d.position > ${afterPosition}
      ORDER BY d.position LIMIT ${limit}`;
    const results: ResultRecord[] = rows.map((r) => ({
      document_id: r.document_id,
      name: r.name,
      mime_type: r.mime_type,
      status: r.status ?? notAnalysed(r.stage_status),
      output: r.output,
      error: r.error ?? r.stage_error,
      requests: r.requests,
      input_tokens: r.input_tokens,
      cached_input_tokens: r.cached_input_tokens,
      output_tokens: r.output_tokens,
      cost_usd: r.cost_usd,
      cached: r.cached ?? false,
      strategy: r.strategy,
      document_tokens: r.token_count,
      latency_ms: r.latency_ms,
      attempts: r.attempts,
      run_id: r.run_id,
    }));
    return { results, next_after_position: rows.length === limit ? rows[rows.length - 1]!.position : null };
  }

  /** One page of results for a client that pages (the UI). */
  async function getResults(batchId: string, page: { afterPosition: number; limit: number }) {
    await assertBatch(batchId);
    return resultsPage(batchId, page.afterPosition, page.limit);
  }

  /**
   * One result per document, in document order, read in pages so a batch of any size
   * streams in constant memory: the document's latest task (a retry run's result replaces the
   * failed one), or why it never reached analysis.
   */
  async function* iterateResults(batchId: string, pageSize = 500): AsyncGenerator<ResultRecord> {
    await assertBatch(batchId);
    let after: number | null = -1;
    while (after !== null) {
      const page: Awaited<ReturnType<typeof resultsPage>> = await resultsPage(batchId, after, pageSize);
      yield* page.results;
      after = page.next_after_position;
    }
  }

  /** Resolves when PostgreSQL answers within `timeoutMs`; rejects with `UnavailableError` otherwise. */
  async function ping(timeoutMs = 1000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UnavailableError("The database")), timeoutMs);
    });
    try {
      await Promise.race([prisma.$queryRaw`SELECT 1`, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async function assertBatch(id: string) {
    const n = await prisma.batch.count({ where: { id } });
    if (!n) throw new NotFoundError("Batch", id);
  }

  return { getBatch, tenantOf, listBatches, getDocuments, getHistory, getPath, getQueue, getResults, iterateResults, ping };
}

export type BatchQueries = ReturnType<typeof createBatchQueries>;
