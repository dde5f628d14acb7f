/**
 * Counts a start of each task a worker was allowed to start (a task started twice in one group
 * counts twice) and records what it now holds of the batch's budget.
 * In: batch id, task ids and each start's reservation (a task's last one wins). Rows: one per distinct id; expected: all.
 */
import type { Sql } from "../pool";

export async function startTasks(sql: Sql, batchId: string, ids: string[], reserveUsd: number[]): Promise<number> {
  const r = await sql.query(
    `UPDATE tasks t SET attempts = t.attempts + u.n, reserved_usd = u.reserve, updated_at = now()
     FROM (SELECT id, count(*)::int AS n, (array_agg(reserve ORDER BY ord DESC))[1] AS reserve
           FROM unnest($2::text[], $3::float8[]) WITH ORDINALITY AS s(id, reserve, ord) GROUP BY id) u
     WHERE t.id = u.id AND t.batch_id = $1::uuid`,
    [batchId, ids, reserveUsd],
  );
  return r.rowCount ?? 0;
}
