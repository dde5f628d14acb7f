/** Document types by file name, for uploads that do not say (or say only octet-stream). */
const BY_EXTENSION: Record<string, string> = {
  txt: "text/plain",
  md: "text/markdown",
  markdown: "text/markdown",
  html: "text/html",
  htm: "text/html",
  pdf: "application/pdf",
  docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  json: "application/json",
  csv: "text/csv",
};

/** The MIME type for a file name's extension, or undefined when we cannot tell. */
export function inferMimeType(name: string): string | undefined {
  const dot = name.lastIndexOf(".");
  return dot < 0 ? undefined : BY_EXTENSION[name.slice(dot + 1).toLowerCase()];
}

/** What clients send when they do not know the type; the file name is a better guess then. */
const GENERIC_TYPES = new Set(["", "application/octet-stream", "binary/octet-stream"]);

export function isGenericMimeType(type: string): boolean {
  return GENERIC_TYPES.has(type.trim().toLowerCase());
}
