/**
 * Records a provider batch about to be submitted and hands it the tasks it carries.
 * In: batch id, our provider batch id, run, provider, task ids (each dispatched, of the run and
 * carried by no other provider batch: the planner checked). Rows: one provider batch; one per task.
 */
import type { Sql } from "../pool";

export async function openProviderBatch(sql: Sql, batchId: string, w: { id: string; runId: number; provider: string; taskIds: string[] }): Promise<number> {
  await sql.query(
    `INSERT INTO provider_batches (id, batch_id, run_id, provider, status, task_count) VALUES ($1::uuid, $2::uuid, $3, $4, 'submitting', $5)`,
    [w.id, batchId, w.runId, w.provider, w.taskIds.length],
  );
  const r = await sql.query(
    `UPDATE tasks SET provider_batch_id = $2::uuid, updated_at = now()
     WHERE batch_id = $1::uuid AND run_id = $3 AND id = ANY($4::text[]) AND status = 'running' AND provider_batch_id IS NULL`,
    [batchId, w.id, w.runId, w.taskIds],
  );
  return r.rowCount ?? 0;
}
