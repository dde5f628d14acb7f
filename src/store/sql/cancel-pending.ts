/**
 * Cancels the units of a run that were never dispatched.
 * In: batch id, run id, kind. Rows: the run's pending units (read off the partial index).
 */
import type { WorkKind } from "../../vocabulary";
import type { Sql } from "../pool";

export async function cancelPending(sql: Sql, batchId: string, kind: WorkKind, runId: number): Promise<number> {
  const r =
    kind === "staging"
      ? await sql.query(
          `UPDATE documents SET stage_status = 'cancelled', updated_at = now() WHERE batch_id = $1::uuid AND stage_run_id = $2 AND stage_status = 'pending'`,
          [batchId, runId],
        )
      : await sql.query(
          `UPDATE tasks SET status = 'cancelled', updated_at = now() WHERE batch_id = $1::uuid AND run_id = $2 AND status = 'pending'`,
          [batchId, runId],
        );
  return r.rowCount ?? 0;
}
