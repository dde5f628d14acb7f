// The cheap checks that bound extraction before any parser runs: HTML nesting depth in one linear pass, a zip's uncompressed size from its central directory, a PDF's page count, and extracted text measured while it is extracted.
import { Document, Packer, Paragraph } from "docx";
import { ExtractionError, extractText, type ExtractLimits } from "../src/workers/extract";
import { htmlDepth } from "../src/workers/html-depth";
import { zipUncompressedBytes } from "../src/workers/zip-size";
import * as hostile from "./support/hostile-documents";

const DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const LIMITS: ExtractLimits = { maxTextBytes: 1 << 20, maxPdfPages: 100, maxUnzippedBytes: 1 << 20 };

async function failure(promise: Promise<unknown>): Promise<ExtractionError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ExtractionError);
  return err as ExtractionError;
}

describe("htmlDepth", () => {
  it.each([
    ["a flat paragraph", "<p>flat</p>", 0],
    ["nested elements", "<div><div><span>x</span></div></div>", 3],
    ["void and self-closed elements", "<div><br><img src=x><hr/><span/></div>", 1],
    ["5,000 list items without end tags", "<ul>" + "<li>item".repeat(5000) + "</ul>", 1],
    ["2,000 table rows without end tags", "<table>" + "<tr><td>a<td>b".repeat(2000) + "</table>", 1],
    ["tags inside comments, scripts and styles", "<div><!-- <b><b><b> --><script>'<i><i><i>'</script><style>b{}</style></div>", 1],
    ["a > inside an attribute", '<div title="a > b"><b>x</b></div>', 2],
    ["elements never closed", "<b><i>unclosed<b><i>", 4],
    ["an end tag closing what it holds", "<div><b></div><div><b></div>", 2],
  ])("%s", (_label, html, depth) => {
    expect(htmlDepth(html, 512)).toBe(depth);
  });

  it("stops as soon as the depth passes the limit, in linear time", () => {
    const html = hostile.nestedHtml(18 << 20).toString();
    const started = performance.now();
    expect(htmlDepth(html, 512)).toBe(513);
    expect(htmlDepth(html.slice(0, 40_000), 1_000_000)).toBeGreaterThan(3000);
    expect(performance.now() - started).toBeLessThan(5000);
  });
});

describe("zipUncompressedBytes", () => {
  it("adds up the entries of a real DOCX", async () => {
    const docx = await Packer.toBuffer(new Document({ sections: [{ children: [new Paragraph("Hello")] }] }));
    const size = zipUncompressedBytes(docx);
    expect(size).toBeGreaterThan(docx.length);
    expect(size).toBeLessThan(1 << 20);
  });

  it("reads what a zip bomb inflates to without inflating it", async () => {
    const bomb = await hostile.docxBomb(150 << 20);
    expect(bomb.length).toBeLessThan(1 << 20);
    expect(zipUncompressedBytes(bomb)).toBeGreaterThan(150 << 20);
  });

  it("is undefined for bytes that are not a zip", () => {
    expect(zipUncompressedBytes(hostile.binaryJunk(4096))).toBeUndefined();
    expect(zipUncompressedBytes(Buffer.alloc(10))).toBeUndefined();
  });
});

describe("extractText within limits", () => {
  it("refuses a PDF of more pages than the limit before parsing a page", async () => {
    const err = await failure(extractText(hostile.manyPagesPdf(101), "application/pdf", "many.pdf", LIMITS));
    expect(err).toMatchObject({ code: "too_many_pages", message: "many.pdf: 101 pages, more than 100" });
  });

  it("stops a PDF's text at the page that passes the limit", async () => {
    // 50 pages of ~54 KB of text each: a limit of 100,000 bytes is passed on the second.
    const limits = { ...LIMITS, maxTextBytes: 100_000 };
    const err = await failure(extractText(hostile.textBombPdf(50, 600), "application/pdf", "bomb.pdf", limits));
    expect(err).toMatchObject({ code: "text_too_large", message: "bomb.pdf: more than 100000 bytes of text" });
  });

  it("refuses a DOCX whose zip directory says it inflates past the limit", async () => {
    const err = await failure(extractText(await hostile.docxBomb(2 << 20), DOCX, "bomb.docx", LIMITS));
    expect(err).toMatchObject({ code: "archive_too_large" });
  });

  it("refuses plain text over the limit before decoding it", async () => {
    const err = await failure(extractText(hostile.singleLineText((1 << 20) + 1), "text/plain", "line.txt", LIMITS));
    expect(err.code).toBe("text_too_large");
  });

  it("refuses HTML and Markdown nested too deep", async () => {
    expect((await failure(extractText(hostile.nestedHtml(100_000), "text/html", "deep.html", LIMITS))).code).toBe("html_too_deep");
    const md = Buffer.from("<b>".repeat(600) + "deep" + "</b>".repeat(600));
    expect((await failure(extractText(md, "text/markdown", "deep.md", LIMITS))).code).toBe("html_too_deep");
  });

  it("still reads a document within every limit", async () => {
    expect(await extractText(hostile.textBombPdf(2, 2), "application/pdf", "small.pdf", LIMITS)).toContain("The quick brown fox");
  });
});
