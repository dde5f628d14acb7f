/**
 * Records analysis outcomes: the output of completed tasks, the error of failed ones, and the
 * provider usage (requests, tokens, cost, strategy) of both.
 * In: batch id and one row per task (the planner's outcome map). Rows: one per task; expected: all.
 */
import type { TaskOutcome } from "../plan";
import type { Sql } from "../pool";

export async function settleTasks(sql: Sql, batchId: string, rows: Map<string, TaskOutcome>): Promise<number> {
  const v = [...rows.values()];
  const r = await sql.query(
    `UPDATE tasks t SET status = u.status, error = u.error, output = u.output::jsonb, input_tokens = u.input_tokens,
       output_tokens = u.output_tokens, requests = u.requests, cached_input_tokens = u.cached_input_tokens,
       cost_usd = u.cost_usd, strategy = u.strategy, latency_ms = u.latency_ms, finished_at = now(), updated_at = now()
     FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[], $8::int[], $9::int[], $10::float8[], $11::text[], $12::int[])
       AS u(id, status, error, output, input_tokens, output_tokens, requests, cached_input_tokens, cost_usd, strategy, latency_ms)
     WHERE t.id = u.id AND t.batch_id = $1::uuid`,
    [
      batchId,
      [...rows.keys()],
      v.map((o) => o.status),
      v.map((o) => o.error),
      v.map((o) => o.output),
      v.map((o) => o.inputTokens),
      v.map((o) => o.outputTokens),
      v.map((o) => o.requests),
      v.map((o) => o.cachedInputTokens),
      v.map((o) => o.costUsd),
      v.map((o) => o.strategy),
      v.map((o) => o.latencyMs),
    ],
  );
  return r.rowCount ?? 0;
}
