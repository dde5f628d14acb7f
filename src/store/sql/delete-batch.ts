/**
 * Deletes a batch; documents, tasks, history and effects go with it by cascade.
 * In: batch id. Rows: 1.
 */
import type { Sql } from "../pool";

export async function deleteBatch(sql: Sql, batchId: string): Promise<number> {
  const r = await sql.query(`DELETE FROM batches WHERE id = $1::uuid`, [batchId]);
  return r.rowCount ?? 0;
}
