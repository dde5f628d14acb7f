/**
 * Hostile documents, generated rather than committed: each is small to make (and most small to store)
 * and costs a naive extractor far more than its size. Every generator is deterministic.
 */
import { crc32, createDeflateRaw, deflateSync } from "node:zlib";

/** `<b><i><u>` nested until the document is about `bytes` long, every element closed again. */
export function nestedHtml(bytes: number): Buffer {
  const open = "<b><i><u>";
  const close = "</u></i></b>";
  const n = Math.floor((bytes - 40) / (open.length + close.length));
  return Buffer.from(`<html><body>${open.repeat(n)}deep${close.repeat(n)}</body></html>`);
}

/** A PDF of `pages` pages that all share one tiny content stream: about 130 bytes a page (8 MB for 60,000). */
export function manyPagesPdf(pages: number): Buffer {
  return sharedContentPdf(pages, "BT /F1 12 Tf 72 720 Td (A page among many.) Tj ET");
}

/**
 * A PDF whose every page shows the same compressed content stream of `lineCount` text lines (drawn over
 * each other, as PDF.js skips text outside the page): the file is small and its text is
 * `pages × lineCount` lines of about 90 characters.
 */
export function textBombPdf(pages: number, lineCount: number): Buffer {
  const text = "(The quick brown fox jumps over the lazy dog while the tireless auditor counts every token.) Tj\n";
  const lines = Array.from({ length: lineCount }, (_, i) => `1 0 0 1 40 ${20 + (i % 760)} Tm ${text}`);
  return sharedContentPdf(pages, `BT /F1 10 Tf\n${lines.join("")}ET`);
}

/**
 * Written by hand, because pdf-lib takes a minute over 50,000 pages: objects 1 (catalog), 2 (page tree),
 * 3 (the shared content stream, deflated), 4 (Helvetica), then one object per page.
 */
function sharedContentPdf(pages: number, operators: string): Buffer {
  const content = deflateSync(operators, { level: 9 });
  const kids = Array.from({ length: pages }, (_, i) => `${i + 5} 0 R`).join(" ");
  const objects: (string | Buffer)[][] = [
    ["<< /Type /Catalog /Pages 2 0 R >>"],
    [`<< /Type /Pages /Count ${pages} /Kids [${kids}] >>`],
    [`<< /Length ${content.length} /Filter /FlateDecode >>\nstream\n`, content, "\nendstream"],
    ["<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"],
  ];
  const page = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R /Resources << /Font << /F1 4 0 R >> >> >>";
  for (let i = 0; i < pages; i++) objects.push([page]);
  const out: Buffer[] = [Buffer.from("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "latin1")];
  let offset = out[0]!.length;
  const offsets: number[] = [];
  objects.forEach((parts, i) => {
    offsets.push(offset);
    for (const part of [`${i + 1} 0 obj\n`, ...parts, "\nendobj\n"]) {
      const bytes = typeof part === "string" ? Buffer.from(part, "latin1") : part;
      out.push(bytes);
      offset += bytes.length;
    }
  });
  const xref = [`xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`, ...offsets.map((o) => `${String(o).padStart(10, "0")} 00000 n \n`)].join("");
  out.push(Buffer.from(`${xref}trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${offset}\n%%EOF\n`, "latin1"));
  return Buffer.concat(out);
}

/**
 * A real DOCX (content types, relationships, main part) whose `word/document.xml` inflates to about
 * `inflatedBytes` of repetitive paragraphs: a zip bomb of a few hundred KB.
 */
export async function docxBomb(inflatedBytes: number): Promise<Buffer> {
  const paragraph = "<w:p><w:r><w:t>All work and no play makes a very long document.</w:t></w:r></w:p>";
  const head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>';
  const tail = "</w:body></w:document>";
  const block = Buffer.from(paragraph.repeat(Math.ceil((1 << 20) / paragraph.length)));
  const blocks = Math.ceil(inflatedBytes / block.length);
  const parts = [Buffer.from(head), ...Array.from({ length: blocks }, () => block), Buffer.from(tail)];
  return zip([
    {
      name: "[Content_Types].xml",
      parts: [
        Buffer.from(
          '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>' +
            '<Default Extension="xml" ContentType="application/xml"/>' +
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        ),
      ],
    },
    {
      name: "_rels/.rels",
      parts: [
        Buffer.from(
          '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' +
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>',
        ),
      ],
    },
    { name: "word/document.xml", parts },
  ]);
}

/** A zip of deflated entries, each given as parts so that a huge entry never exists as one buffer. */
async function zip(entries: { name: string; parts: Buffer[] }[]): Promise<Buffer> {
  const out: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name);
    let crc = 0;
    let size = 0;
    for (const part of entry.parts) {
      crc = crc32(part, crc);
      size += part.length;
    }
    const data = await deflate(entry.parts);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const header = Buffer.alloc(46);
    header.writeUInt32LE(0x02014b50, 0);
    header.writeUInt16LE(20, 4);
    header.writeUInt16LE(20, 6);
    header.writeUInt16LE(8, 10);
    header.writeUInt32LE(crc, 16);
    header.writeUInt32LE(data.length, 20);
    header.writeUInt32LE(size, 24);
    header.writeUInt16LE(name.length, 28);
    header.writeUInt32LE(offset, 42);
    out.push(local, name, data);
    central.push(header, name);
    offset += local.length + name.length + data.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...out, directory, end]);
}

function deflate(parts: Buffer[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const stream = createDeflateRaw({ level: 9 });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
    for (const part of parts) stream.write(part);
    stream.end();
  });
}

/** Deterministic bytes that are not text in any encoding (NULs and invalid UTF-8 throughout). */
export function binaryJunk(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let state = 0x9e3779b9;
  for (let i = 0; i < bytes; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    out[i] = state >>> 24;
  }
  return out;
}

/** `bytes` of words with not a single line break. */
export function singleLineText(bytes: number): Buffer {
  const words = "lorem ipsum dolor sit amet consectetur adipiscing elit ";
  return Buffer.from(words.repeat(Math.ceil(bytes / words.length)).slice(0, bytes));
}
