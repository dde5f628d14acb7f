/**
 * Keeps the answers of tasks that just succeeded in the result cache, for later tasks of the same
 * tenant, fingerprint and document. The first answer stays: a later one for the same key is dropped.
 * In: batch id, task ids (settled in this group), the batch's tenant and fingerprint. Rows: one per
 * succeeded task that was not itself a cache hit and whose document has a staged text.
 */
import type { Sql } from "../pool";
import type { CacheScope } from "./cache-hits";

export async function populateCache(sql: Sql, batchId: string, ids: string[], scope: CacheScope): Promise<number> {
  const r = await sql.query(
    `INSERT INTO result_cache (tenant, fingerprint, text_sha256, document_name, output, cost_usd, strategy, source_task_id)
     SELECT $3, $4, d.text_sha256, d.name, t.output, t.cost_usd, t.strategy, t.id
     FROM tasks t JOIN documents d ON d.id = t.document_id
     WHERE t.batch_id = $1::uuid AND t.id = ANY($2::text[]) AND t.status = 'succeeded' AND NOT t.cached
       AND t.output IS NOT NULL AND d.text_sha256 IS NOT NULL
     ON CONFLICT DO NOTHING`,
    [batchId, ids, scope.tenant, scope.fingerprint],
  );
  return r.rowCount ?? 0;
}
