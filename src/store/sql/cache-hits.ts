/**
 * The tasks of a run whose answer is in the result cache: every pending one (`wholeRun`, when the
 * run starts), and those of `dispatched` still running (just dispatched in this group).
 * In: batch id, run id, the batch's tenant and fingerprint, whether to take the pending tasks, the
 * ids just dispatched. Rows: one per hit with the cached answer (as JSON text), pending ones first
 * (the machine counts them off `pending` before anything dispatched settles and refills), each in
 * document order.
 */
import type { Sql } from "../pool";

export interface CacheScope {
  tenant: string;
  fingerprint: string;
}

export interface CacheHit {
  id: string;
  status: "pending" | "running";
  output: string;
  /** What the answer cost when it was made (null: that model had no price). */
  savedUsd: number | null;
  strategy: string | null;
}

export async function findCacheHits(
  sql: Sql,
  batchId: string,
  runId: number,
  scope: CacheScope,
  wholeRun: boolean,
  dispatched: string[],
): Promise<CacheHit[]> {
  if (!wholeRun && !dispatched.length) return [];
  const { rows } = await sql.query<CacheHit>(
    `SELECT t.id, t.status, c.output::text AS output, c.cost_usd AS "savedUsd", c.strategy FROM tasks t
     JOIN documents d ON d.id = t.document_id
     JOIN result_cache c ON c.tenant = $3 AND c.fingerprint = $4 AND c.text_sha256 = d.text_sha256 AND c.document_name = d.name
     WHERE t.batch_id = $1::uuid AND t.run_id = $2
       AND (($5 AND t.status = 'pending') OR (t.id = ANY($6::text[]) AND t.status = 'running'))
     ORDER BY t.status = 'running', t.position`,
    [batchId, runId, scope.tenant, scope.fingerprint, wholeRun, dispatched],
  );
  return rows;
}
