/**
 * Multipart bodies, bounded: every file streams to a temp file (never into memory), the whole
 * body is counted against `UPLOAD_LIMIT` as it arrives, and the number of files and the size
 * of each are capped. Any limit answers 413 `payload_too_large` as soon as it is crossed; the
 * connection is then closed so the rest of the body is never read.
 */
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { Request, Response } from "express";
import busboy from "busboy";
import { BadRequestError, UploadTooLargeError, ValidationError } from "../errors";
import { assertStorable, unstorable } from "./input-guard";

export interface UploadLimits {
  /** Most bytes in the whole multipart body. */
  totalBytes: number;
  /** Most bytes in one file. */
  fileBytes: number;
  /** Most files in one request. */
  files: number;
}

/** A file of the request, spooled to `path` (deleted when the response ends). */
export interface SpooledFile {
  field: string;
  name: string;
  mimeType: string;
  path: string;
  size: number;
}

export interface MultipartBody {
  fields: Record<string, string>;
  files: SpooledFile[];
}

/** Text fields (name, analysis JSON with its schema) are small; a generous cap keeps them so. */
const FIELD_BYTES = 10 * 1024 * 1024;
const MAX_FIELDS = 100;

/** A form busboy cannot read (no boundary, cut short, bad part headers) is the client's fault. */
const malformed = (err: unknown) =>
  new BadRequestError("malformed_multipart", `The multipart form cannot be read: ${err instanceof Error ? err.message : String(err)}`);

/** Parses `limit` strings of the form `25mb` / `512kb` / `100b` into bytes. */
export function parseBytes(limit: string): number {
  const m = /^(\d+)(b|kb|mb|gb)$/i.exec(limit.trim());
  if (!m) throw new Error(`not a size: ${limit}`);
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[m[2]!.toLowerCase() as "b" | "kb" | "mb" | "gb"];
  return Number(m[1]) * unit;
}

/** Refuses a body whose declared length is already over `limit`, before reading a byte of it. */
export function assertDeclaredLength(req: Request, limit: number) {
  const declared = Number(req.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    throw new UploadTooLargeError(`Request body is ${declared} bytes; the upload limit is ${limit} bytes`);
  }
}

/** Counts the body's bytes as they arrive; calls `onOver` once when they pass `limit`. */
export function countBody(req: Request, limit: number, onOver: (err: Error) => void) {
  let seen = 0;
  const onData = (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > limit) {
      req.off("data", onData);
      onOver(new UploadTooLargeError(`Request body is larger than the upload limit of ${limit} bytes`));
    }
  };
  req.on("data", onData);
}

/** A temp directory for this request's files, removed once the response is done. */
export async function requestTempDir(res: Response, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  res.once("close", () => void rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Reads a multipart request: fields in memory (small), files to temp files. */
export async function readMultipart(req: Request, res: Response, limits: UploadLimits): Promise<MultipartBody> {
  assertDeclaredLength(req, limits.totalBytes);
  const dir = await requestTempDir(res, "tranche-upload-");
  return new Promise<MultipartBody>((resolve, reject) => {
    const fields: Record<string, string> = {};
    const files: SpooledFile[] = [];
    const writes: Promise<void>[] = [];
    let failed = false;
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        limits: { fileSize: limits.fileBytes, files: limits.files, fields: MAX_FIELDS, fieldSize: FIELD_BYTES },
      });
    } catch (err) {
      reject(malformed(err));
      return;
    }
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      req.unpipe(parser);
      reject(err);
    };
    countBody(req, limits.totalBytes, fail);
    parser.on("field", (name, value, info) => {
      if (info.valueTruncated) fail(new UploadTooLargeError(`field ${name} is larger than ${FIELD_BYTES} bytes`));
      else fields[name] = value;
    });
    parser.on("file", (field, stream, info) => {
      if (failed) {
        stream.resume();
        return;
      }
      const file: SpooledFile = {
        field,
        name: info.filename ?? "",
        mimeType: info.mimeType,
        path: path.join(dir, String(files.length)),
        size: 0,
      };
      files.push(file);
      stream.on("data", (chunk: Buffer) => (file.size += chunk.length));
      stream.on("limit", () =>
        fail(new UploadTooLargeError(`file ${files.length - 1} (${file.name}) is larger than the limit of ${limits.fileBytes} bytes`)),
      );
      writes.push(pipeline(stream, createWriteStream(file.path)).catch((err: unknown) => fail(err as Error)));
    });
    parser.on("filesLimit", () => fail(new UploadTooLargeError(`more than ${limits.files} files in one request`)));
    parser.on("fieldsLimit", () => fail(new ValidationError(`more than ${MAX_FIELDS} fields in one request`)));
    parser.on("error", (err: Error) => fail(malformed(err)));
    parser.on("close", () => {
      void Promise.all(writes).then(() => {
        if (failed) return;
        try {
          assertStorable(fields, "body");
          files.forEach((f, i) => {
            if (!f.name) throw new ValidationError(`files.${i}.name: a file needs a filename`);
            const problem = unstorable(f.name) ?? unstorable(f.field);
            if (problem) throw new ValidationError(`files.${i}.name: ${problem}`);
          });
          resolve({ fields, files });
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    req.on("aborted", () => fail(new BadRequestError("malformed_multipart", "the client aborted the upload")));
    req.pipe(parser);
  });
}
