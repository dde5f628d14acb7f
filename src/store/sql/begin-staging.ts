/**
 * Puts every document of a batch in a new staging run, pending.
 * In: batch id, run id. Rows: every document of the batch; expected: the machine's staging total.
 */
import type { Sql } from "../pool";

export async function beginStaging(sql: Sql, batchId: string, runId: number): Promise<number> {
  const r = await sql.query(`UPDATE documents SET stage_run_id = $2, stage_status = 'pending', updated_at = now() WHERE batch_id = $1::uuid`, [batchId, runId]);
  return r.rowCount ?? 0;
}
