/**
 * Adds documents at the end of a batch, in order, with the ids the planner gave them.
 * In: batch id, ids, names, mime types, contents. Rows: one per document; expected: all.
 */
import { createHash } from "node:crypto";
import type { NewDocument } from "../types";
import type { Sql } from "../pool";

export async function insertDocuments(sql: Sql, batchId: string, ids: string[], documents: NewDocument[]): Promise<number> {
  if (!documents.length) return 0;
  const r = await sql.query(
    `INSERT INTO documents (id, batch_id, position, name, mime_type, content, size_bytes, sha256, updated_at)
     SELECT u.id, $1::uuid, (SELECT COALESCE(max(position) + 1, 0) FROM documents WHERE batch_id = $1::uuid) + u.ord - 1,
            u.name, u.mime, u.content, length(u.content), u.sha, now()
     FROM unnest($2::uuid[], $3::text[], $4::text[], $5::bytea[], $6::text[]) WITH ORDINALITY AS u(id, name, mime, content, sha, ord)`,
    [
      batchId,
      ids,
      documents.map((d) => d.name),
      documents.map((d) => d.mimeType),
      documents.map((d) => d.content),
      documents.map((d) => createHash("sha256").update(d.content).digest("hex")),
    ],
  );
  return r.rowCount ?? 0;
}
