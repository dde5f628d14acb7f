/** Turns uploaded documents (inline JSON or multipart files) into stored documents. */
import { PayloadTooLargeError, ValidationError } from "../errors";
import type { NewDocument } from "../store";
import { inferMimeType, isGenericMimeType } from "../mime";
import type { DocumentInput } from "./http-schemas";

export interface UploadedFile {
  originalname: string;
  mimetype: string;
  buffer: Buffer;
}

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

export function fromFiles(files: UploadedFile[]): NewDocument[] {
  return files.map((f, i) => ({
    name: f.originalname,
    mimeType: mimeFor(f.originalname, f.mimetype, `files[${i}]`),
    content: f.buffer,
  }));
}
