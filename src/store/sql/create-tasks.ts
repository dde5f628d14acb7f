/**
 * Creates a run's tasks: one per staged document (scope `staged`), or one per task of the
 * previous run that did not succeed (scope `unsucceeded`, retry-failed).
 * In: batch id, run id, scope. Rows: one per task; expected: the machine's task total.
 */
import type { Sql } from "../pool";

export async function createTasks(sql: Sql, batchId: string, runId: number, scope: "staged" | "unsucceeded"): Promise<number> {
  const r =
    scope === "staged"
      ? await sql.query(
          `INSERT INTO tasks (id, batch_id, run_id, document_id, position, status, updated_at)
           SELECT $1 || '-r' || $2::int || '-' || d.id::text, d.batch_id, $2, d.id, d.position, 'pending', now()
           FROM documents d WHERE d.batch_id = $1::uuid AND d.stage_status = 'succeeded'`,
          [batchId, runId],
        )
      : await sql.query(
          `INSERT INTO tasks (id, batch_id, run_id, document_id, position, status, updated_at)
           SELECT $1 || '-r' || $2::int || '-' || t.document_id::text, t.batch_id, $2, t.document_id, t.position, 'pending', now()
           FROM tasks t WHERE t.batch_id = $1::uuid AND t.run_id = $2 - 1 AND t.status <> 'succeeded'`,
          [batchId, runId],
        );
  return r.rowCount ?? 0;
}
