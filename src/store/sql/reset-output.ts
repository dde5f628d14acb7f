/**
 * Forgets a batch's runs: every task and provider batch is deleted, every document's staging
 * output cleared, and what the result cache spared starts again from 0 (as the usage does).
 * In: batch id. Rows: all tasks, provider batches and documents of the batch, and the batch.
 * Four statements; rare (reset, restage, rerun).
 */
import type { Sql } from "../pool";

export async function resetOutput(sql: Sql, batchId: string): Promise<void> {
  await sql.query(`DELETE FROM tasks WHERE batch_id = $1::uuid`, [batchId]);
  await sql.query(`DELETE FROM provider_batches WHERE batch_id = $1::uuid`, [batchId]);
  await sql.query(
    `UPDATE documents SET stage_run_id = NULL, stage_status = NULL, stage_error = NULL, text = NULL, chunks = NULL,
       token_count = NULL, text_sha256 = NULL, plan_strategy = NULL, plan_requests = NULL, plan_input_tokens = NULL,
       plan_requests_max = NULL, plan_input_tokens_max = NULL, plan_output_tokens_max = NULL, cost_max_usd = NULL, updated_at = now() WHERE batch_id = $1::uuid`,
    [batchId],
  );
  await sql.query(`UPDATE batches SET saved_usd = 0 WHERE id = $1::uuid`, [batchId]);
}
