/**
 * Records what the provider says of one provider batch. A provider batch that ended or failed
 * stays so: a late, older answer does not reopen it.
 * In: batch id and the update. Rows: 0 or 1.
 */
import type { ProviderBatchStatus } from "../../vocabulary";
import type { Sql } from "../pool";

export interface ProviderBatchUpdate {
  id: string;
  status: ProviderBatchStatus;
  providerId: string | null;
  providerStatus: string | null;
  requestCounts: { total: number; succeeded: number; failed: number } | null;
  expiresAt: string | null;
  errors: string[] | null;
}

export async function updateProviderBatch(sql: Sql, batchId: string, u: ProviderBatchUpdate): Promise<number> {
  const r = await sql.query(
    `UPDATE provider_batches SET status = $3, provider_id = COALESCE($4, provider_id), provider_status = COALESCE($5, provider_status),
       request_counts = COALESCE($6::jsonb, request_counts), expires_at = COALESCE($7::timestamptz, expires_at),
       errors = COALESCE($8::jsonb, errors), ended_at = CASE WHEN $3 IN ('ended', 'failed') THEN now() ELSE ended_at END, updated_at = now()
     WHERE id = $1::uuid AND batch_id = $2::uuid AND status NOT IN ('ended', 'failed')`,
    [u.id, batchId, u.status, u.providerId, u.providerStatus, u.requestCounts && JSON.stringify(u.requestCounts), u.expiresAt, u.errors && JSON.stringify(u.errors)],
  );
  return r.rowCount ?? 0;
}
