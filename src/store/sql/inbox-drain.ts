/**
 * The drainer's three statements on the inbox.
 * - tryLockDrain: one drainer per batch (transaction-scoped advisory lock, tried, never waited for). Rows: none.
 * - takeInbox: the oldest pending reports of a batch, up to `limit`. Rows: at most `limit`.
 * - takeInboxIfFree: the same, in a group applied for a synchronous report, and only when no drainer holds
 *   the batch (the lock is tried in the same statement). Rows: at most `limit`; none when the lock is taken.
 * - deleteInbox: the reports a group applied. Rows: one per id; expected: all (the drain lock keeps others off).
 */
import type { WorkerReport } from "../../machines/batch.events";
import type { Sql } from "../pool";

// The advisory lock namespace of inbox drains; any constant, the same in every process.
const DRAIN_LOCK_SPACE = 727_100_003;

export async function tryLockDrain(sql: Sql, batchId: string): Promise<boolean> {
  const { rows } = await sql.query<{ locked: boolean }>(`SELECT pg_try_advisory_xact_lock($1, hashtext($2)) AS locked`, [DRAIN_LOCK_SPACE, batchId]);
  return rows[0]?.locked === true;
}

export async function takeInbox(sql: Sql, batchId: string, limit: number): Promise<{ ids: string[]; reports: WorkerReport[] }> {
  const { rows } = await sql.query<{ id: string; report: WorkerReport }>(
    `SELECT id::text, report FROM inbox WHERE batch_id = $1::uuid ORDER BY id LIMIT $2`,
    [batchId, limit],
  );
  return { ids: rows.map((r) => r.id), reports: rows.map((r) => r.report) };
}

export async function takeInboxIfFree(sql: Sql, batchId: string, limit: number): Promise<{ ids: string[]; reports: WorkerReport[] }> {
  const { rows } = await sql.query<{ id: string; report: WorkerReport }>(
    `WITH drain AS MATERIALIZED (SELECT pg_try_advisory_xact_lock($3, hashtext($1)) AS free)
     SELECT i.id::text, i.report FROM drain, inbox i WHERE drain.free AND i.batch_id = $1::uuid ORDER BY i.id LIMIT $2`,
    [batchId, limit, DRAIN_LOCK_SPACE],
  );
  return { ids: rows.map((r) => r.id), reports: rows.map((r) => r.report) };
}

export async function deleteInbox(sql: Sql, ids: string[]): Promise<number> {
  const r = await sql.query(`DELETE FROM inbox WHERE id = ANY($1::bigint[])`, [ids]);
  return r.rowCount ?? 0;
}
