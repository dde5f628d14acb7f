/**
 * The stored run and status of every unit a group names, documents and tasks in one statement.
 * In: batch id, document ids (uuids only), task ids. Rows: at most one per id; an id of
 * another batch reads as absent.
 */
import type { UnitStatuses } from "../plan";
import type { Sql } from "../pool";

export async function readUnits(sql: Sql, batchId: string, documentIds: string[], taskIds: string[]): Promise<UnitStatuses> {
  const units: UnitStatuses = { documents: new Map(), tasks: new Map() };
  if (!documentIds.length && !taskIds.length) return units;
  const { rows } = await sql.query<{ k: "d" | "t"; id: string; run_id: number | null; status: string | null }>(
    `SELECT 'd' AS k, id::text, stage_run_id AS run_id, stage_status AS status
       FROM documents WHERE batch_id = $1::uuid AND id = ANY($2::uuid[])
     UNION ALL
     SELECT 't', id, run_id, status FROM tasks WHERE batch_id = $1::uuid AND id = ANY($3::text[])`,
    [batchId, documentIds, taskIds],
  );
  for (const r of rows) (r.k === "d" ? units.documents : units.tasks).set(r.id, { runId: r.run_id, status: r.status });
  return units;
}
