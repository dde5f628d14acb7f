/**
 * Records staging outcomes: text, chunks, counts and the analysis plan of staged documents, the error of failed ones.
 * In: batch id and one row per document (the planner's outcome map). Rows: one per document; expected: all.
 */
import type { DocumentOutcome } from "../plan";
import type { Sql } from "../pool";

export async function settleDocuments(sql: Sql, batchId: string, rows: Map<string, DocumentOutcome>): Promise<number> {
  const v = [...rows.values()];
  const r = await sql.query(
    `UPDATE documents d SET stage_status = u.status, stage_error = u.error,
       text = CASE WHEN u.status = 'succeeded' THEN u.text ELSE d.text END,
       chunks = CASE WHEN u.status = 'succeeded' THEN u.chunks::jsonb ELSE d.chunks END,
       token_count = CASE WHEN u.status = 'succeeded' THEN u.tokens ELSE d.token_count END,
       text_sha256 = CASE WHEN u.status = 'succeeded' THEN u.sha ELSE d.text_sha256 END,
       plan_strategy = u.plan_strategy, plan_requests = u.plan_requests, plan_input_tokens = u.plan_input_tokens,
       plan_requests_max = u.plan_requests_max, plan_input_tokens_max = u.plan_input_tokens_max, plan_output_tokens_max = u.plan_output_tokens_max,
       cost_max_usd = NULL, updated_at = now()
     FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[],
                 $9::text[], $10::int[], $11::int[], $12::int[], $13::int[], $14::int[])
       AS u(id, status, error, text, chunks, tokens, sha, plan_strategy, plan_requests, plan_input_tokens, plan_requests_max, plan_input_tokens_max, plan_output_tokens_max)
     WHERE d.id = u.id AND d.batch_id = $1::uuid`,
    [
      batchId, [...rows.keys()], v.map((o) => o.status), v.map((o) => o.error), v.map((o) => o.text), v.map((o) => o.chunks), v.map((o) => o.tokenCount), v.map((o) => o.textSha256),
      v.map((o) => o.plan?.strategy ?? null), v.map((o) => o.plan?.requests ?? null), v.map((o) => o.plan?.inputTokens ?? null),
      v.map((o) => o.plan?.requestsMax ?? null), v.map((o) => o.plan?.inputTokensMax ?? null), v.map((o) => o.plan?.outputTokensMax ?? null),
    ],
  );
  return r.rowCount ?? 0;
}
