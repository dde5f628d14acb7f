/** Turns uploaded documents (inline JSON, multipart files spooled to disk) into stored documents. */
import { readFile } from "node:fs/promises";
import { PayloadTooLargeError, ValidationError } from "../errors";
import type { NewDocument } from "../store";
import { inferMimeType, isGenericMimeType } from "../mime";
import type { DocumentInput } from "./http-schemas";
import type { SpooledFile } from "./multipart";

function mimeFor(name: string, given: string | undefined, field: string): string {
  const mime = given && !isGenericMimeType(given) ? given : inferMimeType(name);
  if (!mime) throw new ValidationError(`${field}: cannot tell the type of "${name}"; give mime_type`);
  return mime.toLowerCase();
}

export function fromJson(documents: DocumentInput[], maxBytes: number): NewDocument[] {
  return documents.map((d, i) => {
    const content = d.content !== undefined ? Buffer.from(d.content, "utf8") : Buffer.from(d.content_base64 ?? "", "base64");
    if (content.length > maxBytes) throw new PayloadTooLargeError(`documents[${i}] (${d.name}) is ${content.length} bytes; the limit is ${maxBytes}`);
    return { name: d.name, mimeType: mimeFor(d.name, d.mime_type, `documents[${i}]`), content };
  });
}

/** Checks every spooled file's name and type up front, so a bad one refuses the request before anything is written. */
export function checkFiles(files: SpooledFile[]): string[] {
  return files.map((f, i) => {
    if (f.name.length > 255) throw new ValidationError(`files[${i}]: the name is longer than 255 characters`);
    return mimeFor(f.name, f.mimeType, `files[${i}]`);
  });
}

/** The spooled files as documents, read from disk one at a time. */
export async function* fromFiles(files: SpooledFile[]): AsyncGenerator<NewDocument> {
  const types = checkFiles(files);
  for (const [i, f] of files.entries()) {
    yield { name: f.name, mimeType: types[i]!, content: await readFile(f.path) };
  }
}
