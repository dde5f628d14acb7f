// Covers chunkText: option checks, token bounds, exact offsets, coverage in order, overlap, boundary preference, awkward input and a 1 MB document.
import { countTokens } from "gpt-tokenizer";
import { type Chunk, chunkText } from "../src/workers/chunk";

const AS_TEXT = { disallowedSpecial: new Set<string>() };

const SUBJECTS = [
  "Amara Nwosu",
  "The Lisbon office",
  "Kenji Watanabe",
  "The board of Vantor Energy",
  "Our team in Quebec",
];
const VERBS = ["reviewed", "questioned", "approved", "postponed", "summarised", "published"];
const OBJECTS = [
  "the quarterly freight figures",
  "a proposal from the Danube Commission",
  "the draft budget for 2025",
  "several complaints about late deliveries in Marseille",
  "the audit prepared by Whitlock & Partners",
];
const ENDINGS = [".", ".", ".", "!", "?", '."'];

/** Deterministic English-like prose: `paragraphs` paragraphs of 3–9 sentences, separated by blank lines. */
function prose(paragraphs: number, seed = 7): string {
  let state = seed;
  const pick = <T>(items: T[]): T => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return items[state % items.length]!;
  };
  const out: string[] = [];
  for (let p = 0; p < paragraphs; p++) {
    const sentences: string[] = [];
    const count = 3 + (p % 7);
    for (let s = 0; s < count; s++) sentences.push(`${pick(SUBJECTS)} ${pick(VERBS)} ${pick(OBJECTS)}${pick(ENDINGS)}`);
    out.push(sentences.join(" "));
  }
  return out.join("\n\n");
}

/** Asserts what every chunking must satisfy, whatever the text. */
function expectWellFormed(text: string, chunks: Chunk[], maxTokens: number): void {
  chunks.forEach((chunk, i) => {
    expect(chunk.index).toBe(i);
    expect(text.slice(chunk.start, chunk.end)).toBe(chunk.text);
    expect(chunk.tokens).toBe(countTokens(chunk.text, AS_TEXT));
    expect(chunk.tokens).toBeLessThanOrEqual(maxTokens);
    expect(chunk.text).toBe(chunk.text.trim());
    expect(chunk.text).not.toBe("");
  });
  const first = chunks[0]!;
  const last = chunks[chunks.length - 1]!;
  expect(first.start).toBe(text.length - text.trimStart().length);
  expect(last.end).toBe(text.trimEnd().length);
  for (let i = 1; i < chunks.length; i++) {
    const [prev, next] = [chunks[i - 1]!, chunks[i]!];
    expect(next.start).toBeGreaterThan(prev.start);
    expect(next.end).toBeGreaterThan(prev.end);
    // Nothing but whitespace may fall between two chunks.
    if (next.start > prev.end) expect(text.slice(prev.end, next.start).trim()).toBe("");
  }
}

describe("options", () => {
  it.each([
    [{ maxTokens: 15, overlapTokens: 0 }],
    [{ maxTokens: 100.5, overlapTokens: 0 }],
    [{ maxTokens: Number.NaN, overlapTokens: 0 }],
    [{ maxTokens: 100, overlapTokens: -1 }],
    [{ maxTokens: 100, overlapTokens: 50 }],
    [{ maxTokens: 100, overlapTokens: 2.5 }],
  ])("refuses %j", (options) => {
    expect(() => chunkText("Some text.", options)).toThrow(RangeError);
  });

  it("accepts the limits", () => {
    expect(chunkText("Some text.", { maxTokens: 16, overlapTokens: 7 })).toHaveLength(1);
  });
});

describe("small input", () => {
  it("gives nothing for empty or whitespace-only text", () => {
    expect(chunkText("", { maxTokens: 100, overlapTokens: 10 })).toEqual([]);
    expect(chunkText(" \n\n\t ", { maxTokens: 100, overlapTokens: 10 })).toEqual([]);
  });

  it("gives one chunk, without the surrounding whitespace, for text that fits", () => {
    const text = "\n  Ada Lovelace wrote to Charles Babbage from London.  \n";
    expect(chunkText(text, { maxTokens: 100, overlapTokens: 10 })).toEqual([
      {
        index: 0,
        text: "Ada Lovelace wrote to Charles Babbage from London.",
        tokens: countTokens("Ada Lovelace wrote to Charles Babbage from London."),
        start: 3,
        end: 53,
      },
    ]);
  });
});

describe("bounds, offsets and overlap", () => {
  const text = prose(60);

  it.each([
    [16, 0],
    [16, 7],
    [64, 8],
    [200, 40],
    [500, 0],
    [500, 100],
  ])("maxTokens %i, overlap %i", (maxTokens, overlapTokens) => {
    const chunks = chunkText(text, { maxTokens, overlapTokens });
    expect(chunks.length).toBeGreaterThan(1);
    expectWellFormed(text, chunks, maxTokens);
    for (let i = 1; i < chunks.length; i++) {
      const [prev, next] = [chunks[i - 1]!, chunks[i]!];
      if (overlapTokens === 0) {
        expect(next.start).toBeGreaterThanOrEqual(prev.end);
      } else {
        expect(next.start).toBeLessThan(prev.end);
        // About overlapTokens: never more, and no less than half once a word boundary is found.
        const shared = countTokens(text.slice(next.start, prev.end), AS_TEXT);
        expect(shared).toBeLessThanOrEqual(overlapTokens + 1);
        expect(shared).toBeGreaterThanOrEqual(overlapTokens / 2);
      }
    }
  });

  it("uses most of the budget", () => {
    const chunks = chunkText(text, { maxTokens: 200, overlapTokens: 0 });
    for (const chunk of chunks.slice(0, -1)) expect(chunk.tokens).toBeGreaterThanOrEqual(100);
  });
});

describe("where chunks break", () => {
  it("prefers paragraph ends", () => {
    const text = prose(40);
    const chunks = chunkText(text, { maxTokens: 300, overlapTokens: 0 });
    expect(chunks.length).toBeGreaterThan(3);
    for (const chunk of chunks.slice(0, -1)) expect(text.slice(chunk.end, chunk.end + 2)).toBe("\n\n");
  });

  it("then sentence ends, within a long paragraph", () => {
    const text = prose(40).replaceAll("\n\n", " ");
    const chunks = chunkText(text, { maxTokens: 120, overlapTokens: 20 });
    expect(chunks.length).toBeGreaterThan(3);
    for (const chunk of chunks.slice(0, -1)) expect(chunk.text).toMatch(/[.!?]"?$/);
  });

  it("treats a line break as a sentence end", () => {
    const text = Array.from({ length: 200 }, (_, i) => `- item ${i} shipped from Rotterdam to Bilbao`).join("\n");
    const chunks = chunkText(text, { maxTokens: 100, overlapTokens: 0 });
    for (const chunk of chunks.slice(0, -1)) expect(text[chunk.end]).toBe("\n");
  });

  it("then words, within a long sentence", () => {
    const text = Array.from({ length: 3000 }, (_, i) => `word${i % 97}`).join(" ");
    const chunks = chunkText(text, { maxTokens: 100, overlapTokens: 10 });
    expectWellFormed(text, chunks, 100);
    for (const chunk of chunks) {
      expect(text[chunk.start - 1] ?? " ").toBe(" ");
      expect(text[chunk.end] ?? " ").toBe(" ");
    }
  });
});

describe("awkward input", () => {
  it("cuts a long run without spaces and keeps every character", () => {
    const text = `Checksum: ${"a1B2c3D4e5".repeat(2000)} end.`;
    const chunks = chunkText(text, { maxTokens: 100, overlapTokens: 0 });
    expectWellFormed(text, chunks, 100);
    expect(chunks.map((c) => c.text).join("").replaceAll(" ", "")).toBe(text.replaceAll(" ", ""));
  });

  it("never splits a surrogate pair", () => {
    const text = "🚢⚓🌍".repeat(400) + " Ahoy from 北京 and Zürich. " + "🌊".repeat(300);
    const chunks = chunkText(text, { maxTokens: 16, overlapTokens: 4 });
    expectWellFormed(text, chunks, 16);
    const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
    for (const chunk of chunks) expect(chunk.text).not.toMatch(loneSurrogate);
  });

  it("treats special-token strings as plain text", () => {
    const text = `The log ends with <|endoftext|> and <|im_start|> markers. ${prose(3)}`;
    const chunks = chunkText(text, { maxTokens: 32, overlapTokens: 4 });
    expectWellFormed(text, chunks, 32);
  });
});

describe("a 1 MB document", () => {
  const text = prose(4000);
  const big = text.repeat(Math.ceil(1_000_000 / text.length)).slice(0, 1_000_000);

  it("is chunked well within a second, correctly", () => {
    // The best of three runs: a quadratic chunker misses the second every time, while a parallel
    // test that takes both cores for a moment (a child process starting) cannot fail a linear one.
    let elapsed = Infinity;
    let chunks: ReturnType<typeof chunkText> = [];
    for (let run = 0; run < 3 && elapsed >= 1000; run++) {
      const started = performance.now();
      chunks = chunkText(big, { maxTokens: 800, overlapTokens: 100 });
      elapsed = Math.min(elapsed, performance.now() - started);
    }
    expect(elapsed).toBeLessThan(1000);
    expectWellFormed(big, chunks, 800);
    // What the chunks hold beyond the document's own tokens is the overlap: about 100 tokens per seam.
    const repeated = chunks.reduce((n, c) => n + c.tokens, 0) - countTokens(big, AS_TEXT);
    expect(repeated).toBeGreaterThan((chunks.length - 1) * 50);
    expect(repeated).toBeLessThan((chunks.length - 1) * 105);
  });
});
