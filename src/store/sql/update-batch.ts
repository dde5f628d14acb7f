/**
 * Writes a batch's new snapshot and version with the columns projected from it (state,
 * counters, document count, usage and budget, queue position for a batch that started or left the queue).
 * In: batch id, the group's final snapshot, version and history position. Rows: 1.
 */
import { MACHINE_VERSION } from "../../machines/batch.machine";
import { stateOf, toStored, type BatchSnapshot } from "../../machines/batch.transition";
import type { Sql } from "../pool";

export async function updateBatch(sql: Sql, batchId: string, snapshot: BatchSnapshot, version: number, historySeq: number): Promise<number> {
  const { status, substate } = stateOf(snapshot);
  const ctx = snapshot.context;
  const t = ctx.tasks;
  const u = ctx.usage;
  // running: 0; queued: kept (the queue numbers it); anything else: out of the queue.
  const queue = status === "ANALYZING" ? (substate === "running" ? "zero" : "keep") : "clear";
  const r = await sql.query(
    `UPDATE batches SET snapshot = $2::jsonb, machine_version = $3, version = $4, history_seq = $5, status = $6, substate = $7,
       run_id = $8, total = $9, pending = $10, running = $11, succeeded = $12, failed = $13, cancelled = $14,
       staging_progress = $15::jsonb, last_error = $16, document_count = $17, updated_at = now(),
       queue_position = CASE $18::text WHEN 'zero' THEN 0 WHEN 'clear' THEN NULL ELSE queue_position END,
       usage_requests = $19, usage_input_tokens = $20, usage_cached_input_tokens = $21, usage_output_tokens = $22,
       usage_cost_usd = $23, usage_unpriced = $24, budget_usd = $25, reserved_usd = $26, pause_reason = $27
     WHERE id = $1::uuid`,
    [
      batchId, JSON.stringify(toStored(snapshot)), MACHINE_VERSION, version, historySeq, status, substate,
      ctx.runId, t.total, t.pending, t.running, t.succeeded, t.failed, t.cancelled,
      JSON.stringify(ctx.staging), ctx.lastError, ctx.documents, queue,
      u.requests, u.inputTokens, u.cachedInputTokens, u.outputTokens, u.costUsd, u.unpriced,
      ctx.budget.limitUsd, ctx.budget.reservedUsd, ctx.pauseReason,
    ],
  );
  return r.rowCount ?? 0;
}
