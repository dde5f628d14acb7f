/**
 * Units whose jobs were taken back before they started: back to pending, or cancelled. A task
 * leaves its provider batch with it (a line that expired or was cancelled) and lets go of what it
 * held of the budget.
 * In: batch id, kind, ids and target statuses. Rows: those still running (a unit a later
 * report of the same group settled is left as settled); at most one per id.
 */
import type { WorkKind } from "../../vocabulary";
import type { Sql } from "../pool";

export async function releaseWithdrawn(sql: Sql, batchId: string, kind: WorkKind, rows: Map<string, "pending" | "cancelled">): Promise<number> {
  const params = [batchId, [...rows.keys()], [...rows.values()]];
  const r =
    kind === "staging"
      ? await sql.query(
          `UPDATE documents d SET stage_status = u.status, updated_at = now() FROM unnest($2::uuid[], $3::text[]) AS u(id, status)
           WHERE d.id = u.id AND d.batch_id = $1::uuid AND d.stage_status = 'running'`,
          params,
        )
      : await sql.query(
          `UPDATE tasks t SET status = u.status, provider_batch_id = NULL, reserved_usd = NULL, updated_at = now() FROM unnest($2::text[], $3::text[]) AS u(id, status)
           WHERE t.id = u.id AND t.batch_id = $1::uuid AND t.status = 'running'`,
          params,
        );
  return r.rowCount ?? 0;
}
