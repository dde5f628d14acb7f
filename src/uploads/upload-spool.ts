/**
 * The upload spool: documents of one upload (a zip archive, a multipart request) are written
 * to `document_uploads` page by page as they are read, so no upload is ever held in memory
 * whole. The batch's writer then moves them into `documents` with one INSERT … SELECT inside
 * its transaction (`moveUploadIntoBatch`): the upload lands whole or not at all. An upload that
 * fails halfway is discarded; one left behind by a crash is swept by age.
 */
import { createHash, randomUUID } from "node:crypto";
import { Prisma } from "../generated/prisma/client";
import type { PrismaClient } from "../db";
import type { NewDocument } from "../store";
import type { Sql } from "../store/pool";

/** An upload staged in the spool, ready to be added to a batch. */
export interface StagedUpload {
  uploadId: string;
  count: number;
  /** The first few names, for the history entry (the full list would grow with the upload). */
  sampleNames: string[];
}

const SAMPLE_NAMES = 20;
/** A page is written once it holds this many documents or bytes, whichever comes first. */
const PAGE_DOCUMENTS = 500;
const PAGE_BYTES = 8 * 1024 * 1024;
/** Spooled rows older than this belong to an upload that was interrupted. */
export const STALE_UPLOAD_MS = 24 * 60 * 60 * 1000;

export function isStagedUpload(docs: NewDocument[] | StagedUpload): docs is StagedUpload {
  return !Array.isArray(docs);
}

export function createUploadSpool(prisma: PrismaClient) {
  async function writePage(uploadId: string, first: number, page: NewDocument[]) {
    const rows = page.map((d, i) =>
      Prisma.sql`(${uploadId}::uuid, ${first + i}, ${d.name}, ${d.mimeType}, ${new Uint8Array(d.content)}, ${d.content.length},
        ${createHash("sha256").update(d.content).digest("hex")})`,
    );
    await prisma.$executeRaw`INSERT INTO document_uploads (upload_id, position, name, mime_type, content, size_bytes, sha256)
      VALUES ${Prisma.join(rows)}`;
  }

  /** Writes every document of `documents` to the spool; on any error the partial upload is discarded and the error rethrown. */
  async function stage(documents: AsyncIterable<NewDocument>): Promise<StagedUpload> {
    const uploadId = randomUUID();
    const sampleNames: string[] = [];
    let count = 0;
    let page: NewDocument[] = [];
    let pageBytes = 0;
    try {
      for await (const doc of documents) {
        if (sampleNames.length < SAMPLE_NAMES) sampleNames.push(doc.name);
        page.push(doc);
        pageBytes += doc.content.length;
        if (page.length >= PAGE_DOCUMENTS || pageBytes >= PAGE_BYTES) {
          await writePage(uploadId, count, page);
          count += page.length;
          page = [];
          pageBytes = 0;
        }
      }
      if (page.length) await writePage(uploadId, count, page);
      count += page.length;
      return { uploadId, count, sampleNames };
    } catch (err) {
      await discard(uploadId);
      throw err;
    }
  }

  async function discard(uploadId: string) {
    await prisma.$executeRaw`DELETE FROM document_uploads WHERE upload_id = ${uploadId}::uuid`;
  }

  /** Deletes what interrupted uploads left behind. */
  async function sweep(olderThanMs = STALE_UPLOAD_MS): Promise<number> {
    return prisma.$executeRaw`DELETE FROM document_uploads WHERE created_at < now() - make_interval(secs => ${olderThanMs / 1000})`;
  }

  return { stage, discard, sweep };
}

export type UploadSpool = ReturnType<typeof createUploadSpool>;

export const documentCount = (docs: NewDocument[] | StagedUpload) => (isStagedUpload(docs) ? docs.count : docs.length);

/**
 * Moves a staged upload into the batch's documents, after its last one, with the ids the
 * planner gave them, and empties it: for the batch's writer, inside its transaction.
 * In: batch id, ids (one per spooled document, in order), the upload. Rows: one per document; expected: all.
 */
export async function moveUploadIntoBatch(sql: Sql, batchId: string, ids: string[], upload: StagedUpload): Promise<number> {
  const r = await sql.query(
    `INSERT INTO documents (id, batch_id, position, name, mime_type, content, size_bytes, sha256, updated_at)
     SELECT i.id, $1::uuid, (SELECT COALESCE(max(position) + 1, 0) FROM documents WHERE batch_id = $1::uuid) + u.position,
            u.name, u.mime_type, u.content, u.size_bytes, u.sha256, now()
     FROM document_uploads u JOIN unnest($3::uuid[]) WITH ORDINALITY AS i(id, ord) ON i.ord = u.position + 1
     WHERE u.upload_id = $2::uuid`,
    [batchId, upload.uploadId, ids],
  );
  await sql.query("DELETE FROM document_uploads WHERE upload_id = $1::uuid", [upload.uploadId]);
  return r.rowCount ?? 0;
}
