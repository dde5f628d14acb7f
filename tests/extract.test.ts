// Covers text extraction for each supported type (plain, CSV, JSON, Markdown, HTML, PDF, DOCX), normalization, and the extraction error codes.
import { readFileSync } from "node:fs";
import path from "node:path";
import { Document, HeadingLevel, Packer, Paragraph } from "docx";
import { PDFDocument, StandardFonts } from "pdf-lib";
import { inferMimeType } from "../src/mime";
import { ExtractionError, extractText } from "../src/workers/extract";

const DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const FIXTURES = path.join(__dirname, "fixtures", "documents");

/** A PDF with one page per entry, each line drawn on its own baseline. */
async function pdfWithPages(pages: string[][]): Promise<Buffer> {
  const pdf = await PDFDocument.create();
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  for (const lines of pages) {
    const page = pdf.addPage();
    lines.forEach((line, i) => page.drawText(line, { x: 72, y: 700 - i * 20, font, size: 12 }));
  }
  return Buffer.from(await pdf.save());
}

async function docxWith(heading: string, paragraphs: string[]): Promise<Buffer> {
  const doc = new Document({
    sections: [
      {
        children: [
          new Paragraph({ text: heading, heading: HeadingLevel.HEADING_1 }),
          ...paragraphs.map((text) => new Paragraph(text)),
        ],
      },
    ],
  });
  return Packer.toBuffer(doc);
}

/** Deterministic bytes that are neither a PDF nor a ZIP. */
const noise = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251));

async function extractionError(promise: Promise<unknown>): Promise<ExtractionError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ExtractionError);
  return err as ExtractionError;
}

describe("inferMimeType", () => {
  it.each([
    ["notes.txt", "text/plain"],
    ["README.MD", "text/markdown"],
    ["guide.markdown", "text/markdown"],
    ["page.html", "text/html"],
    ["old.htm", "text/html"],
    ["report.final.pdf", "application/pdf"],
    ["letter.docx", DOCX],
    ["data.json", "application/json"],
    ["table.csv", "text/csv"],
    ["archive.zip", undefined],
    ["Makefile", undefined],
    ["letter.doc", undefined],
  ])("%s → %s", (name, expected) => {
    expect(inferMimeType(name)).toBe(expected);
  });
});

describe("plain text", () => {
  it("strips a BOM and normalizes NFC, line ends, spaces, trailing spaces and blank lines", async () => {
    const raw =
      "\uFEFF  Cafe\u0301 in  Paris\t\twith   Zoë  \r\nSecond line   \r\n\r\n\r\n\r\n  Third\tparagraph\rlast line \n\n";
    const text = await extractText(Buffer.from(raw, "utf8"), "text/plain", "notes.txt");
    expect(text).toBe("Café in Paris with Zoë\nSecond line\n\nThird paragraph\nlast line");
    expect(text).toBe(text.normalize("NFC"));
  });

  it("reads CSV and JSON as text", async () => {
    const csv = "name,city\r\nAda Lovelace,London\r\nAlan Turing,Manchester\r\n";
    expect(await extractText(Buffer.from(csv), "text/csv", "people.csv")).toBe(
      "name,city\nAda Lovelace,London\nAlan Turing,Manchester",
    );
    const json = '{\n  "org": "UNESCO",\n  "city": "Paris"\n}\n';
    expect(await extractText(Buffer.from(json), "application/json", "org.json")).toBe(
      '{\n"org": "UNESCO",\n"city": "Paris"\n}',
    );
  });

  it("ignores MIME parameters and case", async () => {
    expect(await extractText(Buffer.from("Hello, Oslo"), "Text/Plain; charset=UTF-8", "a.txt")).toBe("Hello, Oslo");
  });

  it("falls back to the file name when the declared type is generic", async () => {
    const markdown = Buffer.from("# Title\n\nBody");
    expect(await extractText(markdown, "application/octet-stream", "doc.md")).toBe("Title\n\nBody");
    expect(await extractText(Buffer.from("Plain words"), "", "doc.txt")).toBe("Plain words");
  });

  it("rejects invalid UTF-8 and NUL bytes as binary", async () => {
    const latin1 = Buffer.from([0x43, 0x61, 0x66, 0xe9, 0x20, 0x41]);
    let err = await extractionError(extractText(latin1, "text/plain", "latin1.txt"));
    expect(err.code).toBe("corrupt_file");
    expect(err.message).toBe("latin1.txt: binary content, not UTF-8 text");

    err = await extractionError(extractText(Buffer.from("abc\0def"), "text/csv", "nul.csv"));
    expect(err.code).toBe("corrupt_file");
    expect(err.message).toMatch(/^nul\.csv: /);
  });
});

describe("Markdown", () => {
  it("keeps headings, paragraphs and list items on their own lines, without markup or URLs", async () => {
    const md = [
      "# Annual Review",
      "",
      "Written by **Grace Hopper** for the [US Navy](https://www.navy.mil/).",
      "",
      "## Sites",
      "",
      "- Arlington",
      "- Norfolk",
      "",
      "1. First step",
      "2. Second step",
      "",
      "![logo](logo.png)",
    ].join("\n");
    const text = await extractText(Buffer.from(md), "text/markdown", "review.md");
    const lines = text.split("\n");
    expect(lines).toEqual(
      expect.arrayContaining([
        "Annual Review",
        "Written by Grace Hopper for the US Navy.",
        "Sites",
        "- Arlington",
        "- Norfolk",
        "1. First step",
        "2. Second step",
      ]),
    );
    expect(text).not.toMatch(/[#*]|https?:|logo\.png|\[|\]/);
  });
});

describe("HTML", () => {
  it("drops head, scripts, styles and images, keeps link text without the URL, and leaves case alone", async () => {
    const html = `<html><head><title>Ignored title</title><style>p { color: red }</style></head>
      <body><h1>Museum news</h1><img src="hall.jpg" alt="The great hall">
      <p>The <a href="https://www.britishmuseum.org/">British Museum</a> opened a new gallery.</p>
      <script>track("visit")</script><p>Curator   Neil&nbsp;MacGregor spoke.</p></body></html>`;
    const text = await extractText(Buffer.from(html), "text/html", "news.html");
    expect(text).toBe("Museum news\n\nThe British Museum opened a new gallery.\n\nCurator Neil MacGregor spoke.");
  });
});

describe("PDF", () => {
  it("extracts the text of every page, in order", async () => {
    const pdf = await pdfWithPages([
      ["Minutes of the Geneva meeting", "Chaired by Ines Moreau of the WHO."],
      ["Second page: next meeting in Nairobi."],
    ]);
    const text = await extractText(pdf, "application/pdf", "minutes.pdf");
    expect(text).toBe(
      "Minutes of the Geneva meeting\nChaired by Ines Moreau of the WHO.\n\nSecond page: next meeting in Nairobi.",
    );
  });

  it("reports a PDF without text as empty", async () => {
    const err = await extractionError(extractText(await pdfWithPages([[]]), "application/pdf", "scan.pdf"));
    expect(err.code).toBe("empty_text");
    expect(err.message).toBe("scan.pdf: no text after extraction");
  });

  it.each([
    ["random bytes", noise],
    ["a PDF header over garbage", Buffer.concat([Buffer.from("%PDF-1.7\n"), noise])],
    ["an empty file", Buffer.alloc(0)],
  ])("turns %s into corrupt_file", async (_what, bytes) => {
    const err = await extractionError(extractText(bytes, "application/pdf", "b.pdf"));
    expect(err.code).toBe("corrupt_file");
    expect(err.message).toMatch(/^b\.pdf: not a readable PDF \(.+\)$/);
  });
});

describe("DOCX", () => {
  it("extracts the heading and paragraphs as separate paragraphs", async () => {
    const docx = await docxWith("Board letter", ["Dear Ms. Nakamura,", "The Kyoto office opens in May."]);
    expect(await extractText(docx, DOCX, "letter.docx")).toBe(
      "Board letter\n\nDear Ms. Nakamura,\n\nThe Kyoto office opens in May.",
    );
  });

  it.each([
    ["random bytes", async () => noise],
    ["a truncated document", async () => (await docxWith("Title", ["Body text."])).subarray(0, 600)],
  ])("turns %s into corrupt_file", async (_what, bytes) => {
    const err = await extractionError(extractText(await bytes(), DOCX, "c.docx"));
    expect(err.code).toBe("corrupt_file");
    expect(err.message).toMatch(/^c\.docx: not a readable DOCX \(.+\)$/);
  });
});

describe("errors", () => {
  it("refuses types it cannot read", async () => {
    let err = await extractionError(extractText(noise, "application/octet-stream", "x.bin"));
    expect(err).toMatchObject({
      code: "unsupported_type",
      message: "x.bin: unsupported type application/octet-stream",
    });
    err = await extractionError(extractText(noise, "image/png", "photo.png"));
    expect(err).toMatchObject({ code: "unsupported_type", message: "photo.png: unsupported type image/png" });
  });

  it("reports documents with nothing but whitespace as empty", async () => {
    for (const content of ["", " \t\r\n\n  \n", "\uFEFF"]) {
      const err = await extractionError(extractText(Buffer.from(content), "text/plain", "empty.txt"));
      expect(err).toMatchObject({ code: "empty_text", message: "empty.txt: no text after extraction" });
    }
    const err = await extractionError(extractText(Buffer.from("<p> </p><img src=a.png>"), "text/html", "e.html"));
    expect(err.code).toBe("empty_text");
  });
});

describe("fixtures for the end-to-end tests", () => {
  it.each([
    ["notes.txt", ["Maria Okafor", "Port of Rotterdam Authority", "Lisbon"]],
    ["readme.md", ["Coastal Air Quality Study", "European Environment Agency", "- Dr. Amelia Hart leads"]],
    ["page.html", ["Fiona MacLeod", "City of Edinburgh Council", "Cowgate"]],
    ["report.pdf", ["Lukas Brunner", "Helvetia Cargo AG", "Lötschberg"]],
    ["letter.docx", ["Hannah Whitfield", "Kumasi Youth Orchestra", "Manchester"]],
  ])("%s yields its text", async (name, phrases) => {
    const text = await extractText(readFileSync(path.join(FIXTURES, name)), inferMimeType(name)!, name);
    for (const phrase of phrases) expect(text).toContain(phrase);
    expect(text).not.toMatch(/<|https?:|\*\*/);
  });

  it("broken.pdf is a corrupt file", async () => {
    const bytes = readFileSync(path.join(FIXTURES, "broken.pdf"));
    const err = await extractionError(extractText(bytes, "application/pdf", "broken.pdf"));
    expect(err.code).toBe("corrupt_file");
  });
});
