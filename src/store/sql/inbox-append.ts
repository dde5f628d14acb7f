/**
 * Appends worker reports to the inbox in one statement; a report already pending (same
 * batch, unit, run and kind) is not added again.
 * In: reports with their unit keys. Rows: at most one per report (fewer for repeats).
 */
import type { WorkerReport } from "../../machines/batch.events";
import type { Sql } from "../pool";

export async function appendInbox(sql: Sql, entries: { report: WorkerReport; unitKey: string }[]): Promise<number> {
  const r = await sql.query(
    `INSERT INTO inbox (batch_id, unit_key, run_id, kind, report)
     SELECT u.batch_id, u.unit_key, u.run_id, u.kind, u.report::jsonb
     FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[]) AS u(batch_id, unit_key, run_id, kind, report)
     ON CONFLICT (batch_id, unit_key, run_id, kind) DO NOTHING`,
    [
      entries.map((e) => e.report.batchId),
      entries.map((e) => e.unitKey),
      entries.map((e) => e.report.runId),
      entries.map((e) => e.report.type),
      entries.map((e) => JSON.stringify(e.report)),
    ],
  );
  return r.rowCount ?? 0;
}

export async function pendingInboxBatches(sql: Sql, limit: number): Promise<string[]> {
  const { rows } = await sql.query<{ batch_id: string }>(`SELECT DISTINCT batch_id::text FROM inbox LIMIT $1`, [limit]);
  return rows.map((r) => r.batch_id);
}

export async function hasInbox(sql: Sql, batchId: string): Promise<boolean> {
  const { rows } = await sql.query<{ e: boolean }>(`SELECT EXISTS (SELECT 1 FROM inbox WHERE batch_id = $1::uuid) AS e`, [batchId]);
  return rows[0]?.e === true;
}
