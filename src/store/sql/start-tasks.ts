/**
 * Counts a start of each task a worker was allowed to start (a task started twice in one group counts twice).
 * In: batch id, task ids. Rows: one per distinct id; expected: all.
 */
import type { Sql } from "../pool";

export async function startTasks(sql: Sql, batchId: string, ids: string[]): Promise<number> {
  const r = await sql.query(
    `UPDATE tasks t SET attempts = t.attempts + u.n, updated_at = now()
     FROM (SELECT id, count(*)::int AS n FROM unnest($2::text[]) AS id GROUP BY id) u
     WHERE t.id = u.id AND t.batch_id = $1::uuid`,
    [batchId, ids],
  );
  return r.rowCount ?? 0;
}
