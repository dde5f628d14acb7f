/**
 * Turns an uploaded document's bytes into normalized plain text for chunking.
 * Pure: no I/O beyond the parsers themselves, so the staging worker can retry it freely.
 */
import { convert, type HtmlToTextOptions } from "html-to-text";
import mammoth from "mammoth";
import { Marked } from "marked";
import { extractText as extractPdfText, getDocumentProxy, getResolvedPDFJS } from "unpdf";
import { inferMimeType, isGenericMimeType } from "../mime";

/** Why a document yielded no text. Every one is permanent: retrying the same bytes cannot help. */
export type ExtractionErrorCode = "unsupported_type" | "empty_text" | "corrupt_file";

/** A document that cannot be turned into text; the message names the document. */
export class ExtractionError extends Error {
  constructor(
    readonly code: ExtractionErrorCode,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

const DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/** Our own instance, so extensions another module registers on the global `marked` do not change our text. */
const markdown = new Marked();

const HTML_OPTIONS: HtmlToTextOptions = {
  // Lines are left whole: chunking finds paragraphs by blank lines, and wrapping would only add noise.
  wordwrap: false,
  selectors: [
    { selector: "a", options: { ignoreHref: true } },
    { selector: "img", format: "skip" },
    // html-to-text renders everything it does not know as inline text, scripts and styles included.
    ...["head", "script", "style", "noscript", "template", "svg"].map((selector) => ({ selector, format: "skip" })),
    // Uppercasing is a terminal convention; for analysis it only changes the words.
    ...["h1", "h2", "h3", "h4", "h5", "h6"].map((selector) => ({ selector, options: { uppercase: false } })),
    // Markdown and most HTML tables hold data; the default layout-table format runs their cells together.
    { selector: "table", format: "dataTable", options: { uppercaseHeaderCells: false, maxColumnWidth: 10_000 } },
    { selector: "ul", options: { itemPrefix: "- " } },
  ],
};

/**
 * Extracts a document's text and normalizes it: NFC, LF line ends, runs of spaces and tabs made one space,
 * no space at either end of a line, at most one blank line in a row, trimmed. Markdown and HTML come out as
 * plain text with headings, paragraphs and list items on lines of their own; link text stays, URLs and images go.
 *
 * A generic `mimeType` (empty or `application/octet-stream`) falls back to {@link inferMimeType}; parameters
 * such as `; charset=utf-8` are ignored, as text is always read as UTF-8.
 *
 * @param name - the document's name, used only in error messages.
 * @throws {@link ExtractionError} `unsupported_type` for a type Tranche cannot read, `corrupt_file` for bytes
 *   that do not parse as their type (including binary or non-UTF-8 "text"), `empty_text` when nothing is left.
 */
export async function extractText(content: Buffer, mimeType: string, name: string): Promise<string> {
  const declared = mimeType.split(";")[0]!.trim().toLowerCase();
  const type = isGenericMimeType(declared) ? (inferMimeType(name) ?? declared) : declared;
  const text = normalizeText(await extractRaw(content, type, name, mimeType));
  if (text === "") throw new ExtractionError("empty_text", `${name}: no text after extraction`);
  return text;
}

async function extractRaw(content: Buffer, type: string, name: string, declared: string): Promise<string> {
  switch (type) {
    case "text/plain":
    case "text/csv":
    case "application/json":
      return decodeUtf8(content, name);
    case "text/markdown":
    case "text/x-markdown":
      return convert(await markdown.parse(decodeUtf8(content, name)), HTML_OPTIONS);
    case "text/html":
    case "application/xhtml+xml":
      return convert(decodeUtf8(content, name), HTML_OPTIONS);
    case "application/pdf":
      return extractPdf(content, name);
    case DOCX:
      return extractDocx(content, name);
    default:
      throw new ExtractionError("unsupported_type", `${name}: unsupported type ${declared || "(none)"}`);
  }
}

function decodeUtf8(content: Buffer, name: string): string {
  let text: string;
  try {
    // ignoreBOM: false (the default) makes the decoder drop a leading BOM for us.
    text = new TextDecoder("utf-8", { fatal: true }).decode(content);
  } catch {
    throw new ExtractionError("corrupt_file", `${name}: binary content, not UTF-8 text`);
  }
  // Valid UTF-8 can still be binary; NUL never occurs in a text document.
  if (text.includes("\0")) throw new ExtractionError("corrupt_file", `${name}: binary content, not UTF-8 text`);
  return text;
}

async function extractPdf(content: Buffer, name: string): Promise<string> {
  // Loaded apart, because failing to load PDF.js (a broken install, a runner that cannot import ESM) is no fault
  // of the document and must not pass for a corrupt file.
  await getResolvedPDFJS();
  let pdf: Awaited<ReturnType<typeof getDocumentProxy>>;
  try {
    // A copy, because PDF.js may detach the array it is given; verbosity 0 keeps its warnings off stdout.
    pdf = await getDocumentProxy(new Uint8Array(content), { verbosity: 0 });
  } catch (err) {
    throw new ExtractionError("corrupt_file", `${name}: not a readable PDF (${reason(err)})`);
  }
  try {
    const { text } = await extractPdfText(pdf, { mergePages: false });
    return text.join("\n\n");
  } catch (err) {
    throw new ExtractionError("corrupt_file", `${name}: not a readable PDF (${reason(err)})`);
  } finally {
    await pdf.destroy();
  }
}

async function extractDocx(content: Buffer, name: string): Promise<string> {
  try {
    return (await mammoth.extractRawText({ buffer: content })).value;
  } catch (err) {
    throw new ExtractionError("corrupt_file", `${name}: not a readable DOCX (${reason(err)})`);
  }
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function normalizeText(text: string): string {
  return text
    .normalize("NFC")
    .replace(/\r\n?/g, "\n")
    .replace(/[^\S\n]+/g, " ")
    // Leading spaces go too: a lone space of indentation carries nothing, and html-to-text indents list items.
    .replace(/^ | $/gm, "")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}
