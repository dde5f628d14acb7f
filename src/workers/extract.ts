/**
 * Turns an uploaded document's bytes into normalized plain text for chunking.
 * Pure: no I/O beyond the parsers themselves, so the staging worker can retry it freely.
 */
import { convert, type HtmlToTextOptions } from "html-to-text";
import { Marked } from "marked";
import { inferMimeType, isGenericMimeType } from "../mime";
import { cleanText } from "../store/clean";
import { htmlDepth } from "./html-depth";
import { zipUncompressedBytes } from "./zip-size";

/**
 * Why a document yielded no text. Every one is permanent: retrying the same bytes cannot help.
 * `extraction_timeout`, `extraction_memory` and `extraction_crashed` are given by the extractor pool,
 * which runs this module in a child process it kills when it runs too long or grows too big.
 */
export type ExtractionErrorCode =
  | "unsupported_type"
  | "empty_text"
  | "corrupt_file"
  | "text_too_large"
  | "too_many_tokens"
  | "too_many_pages"
  | "archive_too_large"
  | "html_too_deep"
  | "extraction_timeout"
  | "extraction_memory"
  | "extraction_crashed";

/** What one document may cost to read; a document over any of them fails with its own code. */
export interface ExtractLimits {
  /** UTF-8 bytes of extracted text, checked while extracting (per PDF page) so no huge string is built. */
  maxTextBytes: number;
  /** Pages of a PDF, read from its page tree before any page is parsed. */
  maxPdfPages: number;
  /** Sum of a DOCX's uncompressed entry sizes, read from the zip's central directory before inflating. */
  maxUnzippedBytes: number;
}

export const DEFAULT_EXTRACT_LIMITS: ExtractLimits = {
  maxTextBytes: 8 * 1024 * 1024,
  maxPdfPages: 2000,
  maxUnzippedBytes: 64 * 1024 * 1024,
};

/**
 * Deepest element nesting we hand to html-to-text: it walks the tree recursively (about 3,000 levels
 * overflow its stack) and its parser keeps open elements with `unshift`, quadratic in the depth.
 */
export const MAX_HTML_DEPTH = 512;

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
export async function extractText(
  content: Buffer,
  mimeType: string,
  name: string,
  limits: ExtractLimits = DEFAULT_EXTRACT_LIMITS,
): Promise<string> {
  const declared = mimeType.split(";")[0]!.trim().toLowerCase();
  const type = isGenericMimeType(declared) ? (inferMimeType(name) ?? declared) : declared;
  const text = normalizeText(await extractRaw(content, type, name, mimeType, limits));
  if (text === "") throw new ExtractionError("empty_text", `${name}: no text after extraction`);
  checkTextSize(Buffer.byteLength(text), name, limits);
  return text;
}

async function extractRaw(content: Buffer, type: string, name: string, declared: string, limits: ExtractLimits): Promise<string> {
  switch (type) {
    case "text/plain":
    case "text/csv":
    case "application/json":
      // Whitespace runs shrink in normalizing, but never by enough to make a text over the limit worth decoding.
      checkTextSize(content.length, name, limits);
      return decodeUtf8(content, name);
    case "text/markdown":
    case "text/x-markdown":
      return htmlToText(await markdown.parse(decodeUtf8(content, name)), name);
    case "text/html":
    case "application/xhtml+xml":
      return htmlToText(decodeUtf8(content, name), name);
    case "application/pdf":
      return extractPdf(content, name, limits);
    case DOCX:
      return extractDocx(content, name, limits);
    default:
      throw new ExtractionError("unsupported_type", `${name}: unsupported type ${declared || "(none)"}`);
  }
}

function checkTextSize(bytes: number, name: string, limits: ExtractLimits): void {
  if (bytes > limits.maxTextBytes) {
    throw new ExtractionError("text_too_large", `${name}: more than ${limits.maxTextBytes} bytes of text`);
  }
}

function htmlToText(html: string, name: string): string {
  const depth = htmlDepth(html, MAX_HTML_DEPTH);
  if (depth > MAX_HTML_DEPTH) {
    throw new ExtractionError("html_too_deep", `${name}: elements nested more than ${MAX_HTML_DEPTH} deep`);
  }
  return convert(html, HTML_OPTIONS);
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

async function extractPdf(content: Buffer, name: string, limits: ExtractLimits): Promise<string> {
  // Loaded apart, because failing to load PDF.js (a broken install, a runner that cannot import ESM) is no fault
  // of the document and must not pass for a corrupt file.
  // Imported when first needed, as mammoth below: an extractor that reads only text starts sooner.
  const { getDocumentProxy, getResolvedPDFJS } = await import("unpdf");
  await getResolvedPDFJS();
  let pdf: Awaited<ReturnType<typeof getDocumentProxy>>;
  try {
    // A copy, because PDF.js may detach the array it is given; verbosity 0 keeps its warnings off stdout.
    pdf = await getDocumentProxy(new Uint8Array(content), { verbosity: 0 });
  } catch (err) {
    throw new ExtractionError("corrupt_file", `${name}: not a readable PDF (${reason(err)})`);
  }
  if (pdf.numPages > limits.maxPdfPages) {
    await pdf.destroy();
    throw new ExtractionError("too_many_pages", `${name}: ${pdf.numPages} pages, more than ${limits.maxPdfPages}`);
  }
  try {
    // Page by page, not unpdf's all pages at once: a PDF of many pages then never holds them all, and one
    // whose content inflates to huge text stops at the page that passes the limit.
    const pages: string[] = [];
    let bytes = 0;
    for (let n = 1; n <= pdf.numPages; n++) {
      const page = await pdf.getPage(n);
      const content = await page.getTextContent();
      const text = content.items.map((item) => ("str" in item ? item.str + (item.hasEOL ? "\n" : "") : "")).join("");
      page.cleanup();
      bytes += Buffer.byteLength(text);
      checkTextSize(bytes, name, limits);
      pages.push(text);
    }
    return pages.join("\n\n");
  } catch (err) {
    if (err instanceof ExtractionError) throw err;
    throw new ExtractionError("corrupt_file", `${name}: not a readable PDF (${reason(err)})`);
  } finally {
    await pdf.destroy();
  }
}

async function extractDocx(content: Buffer, name: string, limits: ExtractLimits): Promise<string> {
  const unzipped = zipUncompressedBytes(content);
  if (unzipped === undefined) throw new ExtractionError("corrupt_file", `${name}: not a readable DOCX (no zip central directory)`);
  if (unzipped > limits.maxUnzippedBytes) {
    throw new ExtractionError("archive_too_large", `${name}: inflates to more than ${limits.maxUnzippedBytes} bytes`);
  }
  const { default: mammoth } = await import("mammoth");
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
  // PDF and DOCX text may hold NULs and lone surrogates, which PostgreSQL cannot store; cleaned here,
  // before chunking, so that the chunks' offsets match the text that is stored.
  return cleanText(text)
    .normalize("NFC")
    .replace(/\r\n?/g, "\n")
    .replace(/[^\S\n]+/g, " ")
    // Leading spaces go too: a lone space of indentation carries nothing, and html-to-text indents list items.
    .replace(/^ | $/gm, "")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}
