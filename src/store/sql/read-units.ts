/**
 * The stored run, status and dispatch count of every unit a group names, documents and tasks in one statement.
 * In: batch id, document ids (uuids only), task ids. Rows: at most one per id; an id of
 * another batch reads as absent. A task also says whether its result already waits in the
 * inbox (read off the inbox's unique key), which provider batch carries it (batch lane), the
 * most a start of it may cost (its document's `cost_max_usd`) and what it holds of the budget.
 */
import type { UnitStatuses } from "../plan";
import type { Sql } from "../pool";

export async function readUnits(sql: Sql, batchId: string, documentIds: string[], taskIds: string[]): Promise<UnitStatuses> {
  const units: UnitStatuses = { documents: new Map(), tasks: new Map() };
  if (!documentIds.length && !taskIds.length) return units;
  const { rows } = await sql.query<{
    k: "d" | "t"; id: string; run_id: number | null; status: string | null; dispatches: number; reported: boolean;
    provider_batch_id: string | null; cost_max_usd: number | null; held_usd: number | null;
  }>(
    `SELECT 'd' AS k, id::text, stage_run_id AS run_id, stage_status AS status, dispatches, false AS reported, NULL::text AS provider_batch_id,
            NULL::float8 AS cost_max_usd, NULL::float8 AS held_usd
       FROM documents WHERE batch_id = $1::uuid AND id = ANY($2::uuid[])
     UNION ALL
     SELECT 't', t.id, t.run_id, t.status, t.dispatches,
            EXISTS (SELECT 1 FROM inbox i WHERE i.batch_id = t.batch_id AND i.unit_key = t.id AND i.run_id = t.run_id
                    AND i.kind IN ('TASK_COMPLETED', 'TASK_FAILED')),
            t.provider_batch_id::text, d.cost_max_usd, t.reserved_usd
       FROM tasks t JOIN documents d ON d.id = t.document_id WHERE t.batch_id = $1::uuid AND t.id = ANY($3::text[])`,
    [batchId, documentIds, taskIds],
  );
  for (const r of rows) {
    if (r.k === "d") units.documents.set(r.id, { runId: r.run_id, status: r.status, dispatches: r.dispatches });
    else {
      units.tasks.set(r.id, {
        runId: r.run_id,
        status: r.status,
        dispatches: r.dispatches,
        providerBatchId: r.provider_batch_id,
        costMaxUsd: r.cost_max_usd,
        ...(r.held_usd ? { heldUsd: r.held_usd } : {}),
        ...(r.reported ? { reported: true } : {}),
      });
    }
  }
  return units;
}
