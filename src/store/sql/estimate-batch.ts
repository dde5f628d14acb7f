/**
 * The estimate of a batch whose staging just finished: prices each staged document's plan (its
 * worst case becomes `cost_max_usd`, what a start of its task reserves of the budget) and sums the
 * plans into the batch's `estimate`, set-based over the documents, in two statements.
 * In: batch id, the batch's pricing. Rows: every staged document of the batch.
 */
import type { BatchPricing } from "../../pricing";
import type { Sql } from "../pool";
import type { CacheScope } from "./cache-hits";

/**
 * The staged documents that will not reach the provider (a cached result answers them): left out
 * of the estimate and reserving nothing. `tenant` and `fingerprint` are the statement's
 * placeholders for the batch's cache scope; none without one (the batch keeps out of the cache).
 */
function cachedDocuments(cache: CacheScope | null, tenant: string, fingerprint: string): string {
  if (!cache) return `SELECT NULL::uuid AS id WHERE false`;
  return `SELECT cd.id FROM documents cd
    JOIN result_cache rc ON rc.tenant = ${tenant} AND rc.fingerprint = ${fingerprint} AND rc.text_sha256 = cd.text_sha256 AND rc.document_name = cd.name
    WHERE cd.batch_id = $1::uuid AND cd.stage_status = 'succeeded'`;
}

export interface BatchEstimate {
  model: string;
  provider: string;
  documents: number;
  cached_documents: number;
  /** Provider requests and prompt tokens when every answer is valid the first time. */
  requests: number;
  input_tokens: number;
  /** With every re-ask, and every answer at its ceiling. */
  requests_max: number;
  input_tokens_max: number;
  output_tokens_max: number | null;
  cost_usd_max: number | null;
  map_reduce_documents: number;
  price: { input_per_mtok: number; cached_input_per_mtok?: number; output_per_mtok: number; cache_write_per_mtok?: number } | null;
  price_checked_at: string | null;
  price_source: string | null;
  /** Why a cost is null, or what it rests on. */
  note: string | null;
  computed_at: string;
}

interface Totals {
  documents: number;
  cached: number;
  requests: string | null;
  input_tokens: string | null;
  requests_max: string | null;
  input_tokens_max: string | null;
  output_tokens_max: string | null;
  /** Documents with no plan (staged before plans were counted), and with no ceiling on an answer. */
  unplanned: number;
  unbounded: number;
  cost_max: number | null;
  map_reduce: number;
}

export async function estimateBatch(sql: Sql, batchId: string, pricing: BatchPricing, cache: CacheScope | null = null): Promise<BatchEstimate> {
  const scope = cache ? [cache.tenant, cache.fingerprint] : [];
  const price = pricing.price;
  // Worst case: no input served from the prompt cache, and cache writes at their own (higher) rate.
  const inputRate = price ? Math.max(price.input_per_mtok, price.cache_write_per_mtok ?? 0) : null;
  const outputRate = price ? price.output_per_mtok : null;
  await sql.query(
    `UPDATE documents SET cost_max_usd =
       CASE WHEN $2::float8 IS NULL OR plan_input_tokens_max IS NULL OR plan_output_tokens_max IS NULL THEN NULL
            ELSE round(((plan_input_tokens_max::numeric * $2::numeric + plan_output_tokens_max::numeric * $3::numeric) / 1000000), 8)::float8 END
     WHERE batch_id = $1::uuid AND stage_status = 'succeeded' AND id NOT IN (${cachedDocuments(cache, "$4", "$5")})`,
    [batchId, inputRate, outputRate, ...scope],
  );
  const { rows } = await sql.query<Totals>(
    `SELECT count(*)::int AS documents, (SELECT count(*)::int FROM (${cachedDocuments(cache, "$2", "$3")}) x) AS cached,
            sum(plan_requests) AS requests, sum(plan_input_tokens) AS input_tokens,
            sum(plan_requests_max) AS requests_max, sum(plan_input_tokens_max) AS input_tokens_max,
            sum(plan_output_tokens_max) AS output_tokens_max,
            count(*) FILTER (WHERE plan_requests IS NULL)::int AS unplanned,
            count(*) FILTER (WHERE plan_output_tokens_max IS NULL)::int AS unbounded,
            round(sum(cost_max_usd)::numeric, 8)::float8 AS cost_max,
            count(*) FILTER (WHERE plan_strategy = 'map_reduce')::int AS map_reduce
     FROM documents d LEFT JOIN (${cachedDocuments(cache, "$2", "$3")}) c ON c.id = d.id
     WHERE d.batch_id = $1::uuid AND d.stage_status = 'succeeded' AND c.id IS NULL`,
    [batchId, ...scope],
  );
  const t = rows[0]!;
  const n = (v: string | null) => (v === null ? 0 : Number(v));
  const bounded = t.unbounded === 0;
  const note = !price
    ? pricing.note
    : t.unplanned > 0
      ? `${t.unplanned} documents were staged before their plans were counted: stage again for a complete estimate`
      : !bounded
        ? `nothing bounds an answer of model "${pricing.model}": set analysis.max_tokens to get a maximum cost`
        : pricing.billed
          ? null
          : pricing.note;
  return {
    model: pricing.model,
    provider: pricing.provider,
    documents: t.documents,
    cached_documents: t.cached,
    requests: n(t.requests),
    input_tokens: n(t.input_tokens),
    requests_max: n(t.requests_max),
    input_tokens_max: n(t.input_tokens_max),
    output_tokens_max: bounded ? n(t.output_tokens_max) : null,
    cost_usd_max: price && bounded ? (t.cost_max ?? 0) : null,
    map_reduce_documents: t.map_reduce,
    price: price ?? null,
    price_checked_at: pricing.checkedAt,
    price_source: pricing.source,
    note,
    computed_at: new Date().toISOString(),
  };
}

/** Stores the estimate on the batch row. Rows: 1. */
export async function storeEstimate(sql: Sql, batchId: string, estimate: BatchEstimate): Promise<void> {
  await sql.query(`UPDATE batches SET estimate = $2::jsonb WHERE id = $1::uuid`, [batchId, JSON.stringify(estimate)]);
}
