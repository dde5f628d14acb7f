/**
 * Locks one batch row for the group and reads what planning needs.
 * In: batch id. Rows: 1 (0 when the batch does not exist). Holds the row lock until commit.
 */
import type { StoredSnapshot } from "../../machines/batch.transition";
import type { AnalysisMode } from "../../vocabulary";
import type { Sql } from "../pool";

export interface LockedBatch {
  snapshot: StoredSnapshot;
  machineVersion: number;
  version: number;
  historySeq: number;
  priority: number;
  tenant: string;
  /** The analysis lane (`live` or `batch`), which decides how dispatched tasks are enqueued. */
  lane: AnalysisMode;
}

export async function lockBatch(sql: Sql, batchId: string): Promise<LockedBatch | null> {
  const { rows } = await sql.query<LockedBatch>(
    `SELECT snapshot, machine_version AS "machineVersion", version, history_seq AS "historySeq", priority, tenant,
       COALESCE(analysis->>'mode', 'live') AS lane FROM batches WHERE id = $1::uuid FOR UPDATE`,
    [batchId],
  );
  return rows[0] ?? null;
}
