/**
 * Creates a batch row in its initial state.
 * In: id, name, analysis, priority, the initial snapshot and its projections. Rows: 1.
 */
import { MACHINE_VERSION } from "../../machines/batch.machine";
import { toStored, type BatchSnapshot } from "../../machines/batch.transition";
import type { Sql } from "../pool";

export async function insertBatch(sql: Sql, b: { id: string; name: string; tenant: string; analysis: unknown; priority: number; snapshot: BatchSnapshot }): Promise<void> {
  await sql.query(
    `INSERT INTO batches (id, name, status, version, machine_version, snapshot, priority, history_seq, staging_progress, analysis, document_count, updated_at, tenant, budget_usd)
     VALUES ($1::uuid, $2, 'SAVED', 1, $3, $4::jsonb, $5, 1, $6::jsonb, $7::jsonb, $8, now(), $9, $10)`,
    [b.id, b.name, MACHINE_VERSION, JSON.stringify(toStored(b.snapshot)), b.priority, JSON.stringify(b.snapshot.context.staging), JSON.stringify(b.analysis), b.snapshot.context.documents, b.tenant, b.snapshot.context.budget.limitUsd],
  );
}
