/**
 * Completes tasks from the result cache: each takes the cached answer, costs nothing, and records
 * what the answer cost when it was made (`saved_usd`), which the batch adds up.
 * In: batch id and one row per task (the planner's map). Rows: one per task; expected: all.
 */
import type { CachedOutcome } from "../plan";
import type { Sql } from "../pool";

export async function settleCached(sql: Sql, batchId: string, rows: Map<string, CachedOutcome>): Promise<number> {
  const v = [...rows.values()];
  const r = await sql.query(
    `UPDATE tasks t SET status = 'succeeded', output = u.output::jsonb, error = NULL, cached = true, saved_usd = u.saved_usd,
       cost_usd = 0, requests = 0, input_tokens = 0, cached_input_tokens = 0, output_tokens = 0, strategy = u.strategy,
       latency_ms = NULL, finished_at = now(), updated_at = now()
     FROM unnest($2::text[], $3::text[], $4::float8[], $5::text[]) AS u(id, output, saved_usd, strategy)
     WHERE t.id = u.id AND t.batch_id = $1::uuid`,
    [batchId, [...rows.keys()], v.map((o) => o.output), v.map((o) => o.savedUsd), v.map((o) => o.strategy)],
  );
  const saved = v.reduce((sum, o) => sum + (o.savedUsd ?? 0), 0);
  if (saved > 0) await sql.query(`UPDATE batches SET saved_usd = saved_usd + $2 WHERE id = $1::uuid`, [batchId, saved]);
  return r.rowCount ?? 0;
}
