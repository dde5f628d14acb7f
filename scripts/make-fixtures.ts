/**
 * Writes the binary document fixtures that the tests upload, next to the hand-written text ones.
 *
 *   npx tsx scripts/make-fixtures.ts
 *
 * Inputs: none (the content is below). Outputs, in tests/fixtures/documents/: report.pdf (two pages, text
 * drawn in Helvetica), letter.docx and broken.pdf (bytes that are not a PDF). Exits non-zero if a write fails.
 * Dates are fixed so that running it again changes as few bytes as the libraries allow.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Document, HeadingLevel, Packer, Paragraph } from "docx";
import { PDFDocument, type PDFFont, StandardFonts } from "pdf-lib";

const OUT_DIR = path.join(__dirname, "..", "tests", "fixtures", "documents");
const FIXED_DATE = new Date("2024-05-02T09:00:00Z");

const REPORT_PAGES: string[][] = [
  [
    "Quarterly Report: Alpine Rail Freight, First Quarter 2024",
    "Prepared by Lukas Brunner for the board of Helvetia Cargo AG, Zurich.",
    "Freight volumes through the Gotthard Base Tunnel grew by eight percent compared with the same quarter last " +
      "year. Most of the growth came from the new shuttle between Basel and Milan operated with Trenitalia.",
    "Delays at the Chiasso border crossing remain the main concern. Elena Rossi of the Italian Ministry of " +
      "Infrastructure has proposed a joint customs desk, which the Swiss Federal Railways will review in May.",
  ],
  [
    "Outlook",
    "The company expects volumes to stay flat in the second quarter while the Lötschberg line is closed for " +
      "maintenance. Lukas Brunner will present the revised timetable in Bern on 20 June.",
  ],
];

const LETTER: { heading: string; paragraphs: string[] } = {
  heading: "Greenfield Community Trust",
  paragraphs: [
    "Dear Mr. Osei,",
    "Thank you for your application on behalf of the Kumasi Youth Orchestra. The trustees met in Manchester on " +
      "3 April and agreed to fund the orchestra's summer tour of Leeds, York and Newcastle.",
    "Our programme officer, Hannah Whitfield, will contact you next week to agree the payment schedule. She " +
      "works closely with the Arts Council England and can also advise on venues in the North East.",
    "Yours sincerely,",
    "Catherine Doyle, Chair of Trustees",
  ],
};

async function makeReportPdf(): Promise<Uint8Array> {
  const pdf = await PDFDocument.create();
  pdf.setTitle("Quarterly Report: Alpine Rail Freight");
  pdf.setAuthor("Lukas Brunner");
  pdf.setCreationDate(FIXED_DATE);
  pdf.setModificationDate(FIXED_DATE);
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  for (const paragraphs of REPORT_PAGES) {
    const page = pdf.addPage();
    const { width, height } = page.getSize();
    let y = height - 72;
    for (const paragraph of paragraphs) {
      // pdf-lib draws one line per call; a paragraph has to be wrapped by hand.
      for (const line of wrap(paragraph, font, 11, width - 144)) {
        page.drawText(line, { x: 72, y, font, size: 11 });
        y -= 15;
      }
      y -= 12;
    }
  }
  return pdf.save();
}

function wrap(text: string, font: PDFFont, size: number, maxWidth: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    const candidate = line ? `${line} ${word}` : word;
    if (line && font.widthOfTextAtSize(candidate, size) > maxWidth) {
      lines.push(line);
      line = word;
    } else {
      line = candidate;
    }
  }
  if (line) lines.push(line);
  return lines;
}

async function makeLetterDocx(): Promise<Buffer> {
  const doc = new Document({
    creator: "Catherine Doyle",
    title: "Grant decision",
    sections: [
      {
        children: [
          new Paragraph({ text: LETTER.heading, heading: HeadingLevel.HEADING_1 }),
          ...LETTER.paragraphs.map((text) => new Paragraph(text)),
        ],
      },
    ],
  });
  return Packer.toBuffer(doc);
}

/** A fixed run of bytes that no parser takes for a PDF: no header, no trailer, not text. */
function brokenPdf(): Buffer {
  const bytes = Buffer.alloc(2048);
  let state = 0x2545;
  for (let i = 0; i < bytes.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}

async function main(): Promise<void> {
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(path.join(OUT_DIR, "report.pdf"), await makeReportPdf());
  writeFileSync(path.join(OUT_DIR, "letter.docx"), await makeLetterDocx());
  writeFileSync(path.join(OUT_DIR, "broken.pdf"), brokenPdf());
}

main().catch((err: unknown) => {
  process.stderr.write(`make-fixtures: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
