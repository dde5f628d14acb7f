/**
 * `POST /api/batches/:id/documents` with a zip archive as the body (`Content-Type:
 * application/zip`): the body streams to a temp file (counted against `UPLOAD_LIMIT`), the
 * archive is checked from its central directory, and its documents are spooled page by page.
 * The batch's writer then adds them in one statement: all of the archive or nothing.
 */
import { createWriteStream } from "node:fs";
import path from "node:path";
import type { Request, Response } from "express";
import { ValidationError } from "../errors";
import { openArchive, type ArchiveLimits } from "../uploads/archive";
import type { StagedUpload, UploadSpool } from "../uploads/upload-spool";
import { assertDeclaredLength, countBody, requestTempDir } from "./multipart";

const ARCHIVE_TYPES = ["application/zip", "application/x-zip-compressed"];

export function isArchiveRequest(req: Request): boolean {
  return ARCHIVE_TYPES.some((t) => req.is(t));
}

export interface ArchiveUploadDeps {
  uploadLimit: number;
  archive: ArchiveLimits;
  spool: UploadSpool;
}

export async function receiveArchive(req: Request, res: Response, deps: ArchiveUploadDeps): Promise<StagedUpload> {
  assertDeclaredLength(req, deps.uploadLimit);
  const file = path.join(await requestTempDir(res, "tranche-archive-"), "upload.zip");
  await new Promise<void>((resolve, reject) => {
    const out = createWriteStream(file);
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      req.unpipe(out);
      out.destroy();
      reject(err);
    };
    countBody(req, deps.uploadLimit, fail);
    req.on("aborted", () => fail(new ValidationError("archive: the client aborted the upload")));
    out.on("error", fail);
    out.on("finish", () => {
      if (settled) return;
      settled = true;
      resolve();
    });
    req.pipe(out);
  });
  const { count, documents } = await openArchive(file, deps.archive);
  const staged = await deps.spool.stage(documents);
  if (staged.count !== count) {
    await deps.spool.discard(staged.uploadId);
    throw new ValidationError(`archive: its directory lists ${count} documents, ${staged.count} could be read`);
  }
  return staged;
}
