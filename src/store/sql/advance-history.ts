/**
 * Moves a batch's history position past entries written outside a planned group (a
 * submission refused because its own writes failed).
 * In: batch id, new position. Rows: 1.
 */
import type { Sql } from "../pool";

export async function advanceHistory(sql: Sql, batchId: string, historySeq: number): Promise<void> {
  await sql.query(`UPDATE batches SET history_seq = $2 WHERE id = $1::uuid`, [batchId, historySeq]);
}
