/**
 * Dispatches the next pending units of a run, in document order, counting each dispatch
 * (the count is part of the unit's job id, so a re-dispatch never meets an old job).
 * In: batch id, kind, run id, how many. Rows: exactly `count` (read off the partial index of
 * pending units: the plan does not depend on statistics); returns their ids and dispatch numbers.
 */
import type { WorkKind } from "../../vocabulary";
import type { Sql } from "../pool";

export const DISPATCH_DOCUMENTS = `UPDATE documents SET stage_status = 'running', dispatches = dispatches + 1, updated_at = now()
  WHERE id IN (SELECT id FROM documents WHERE batch_id = $1::uuid AND stage_run_id = $2 AND stage_status = 'pending'
               ORDER BY position LIMIT $3)
  RETURNING id::text, dispatches AS dispatch`;

export const DISPATCH_TASKS = `UPDATE tasks SET status = 'running', dispatches = dispatches + 1, updated_at = now()
  WHERE id IN (SELECT id FROM tasks WHERE batch_id = $1::uuid AND run_id = $2 AND status = 'pending'
               ORDER BY position LIMIT $3)
  RETURNING id, dispatches AS dispatch`;

export async function dispatchUnits(sql: Sql, batchId: string, kind: WorkKind, runId: number, count: number): Promise<{ id: string; dispatch: number }[]> {
  const { rows } = await sql.query<{ id: string; dispatch: number }>(kind === "staging" ? DISPATCH_DOCUMENTS : DISPATCH_TASKS, [batchId, runId, count]);
  return rows;
}
