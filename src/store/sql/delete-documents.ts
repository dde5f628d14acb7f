/**
 * Removes documents from a batch (their tasks go with them, by cascade).
 * In: batch id, document ids. Rows: one per id found; expected: all (the planner read them).
 */
import type { Sql } from "../pool";

export async function deleteDocuments(sql: Sql, batchId: string, ids: string[]): Promise<number> {
  const r = await sql.query(`DELETE FROM documents WHERE batch_id = $1::uuid AND id = ANY($2::uuid[])`, [batchId, ids]);
  return r.rowCount ?? 0;
}
