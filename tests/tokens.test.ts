// Token counting stays linear on text without spaces (gpt-tokenizer alone is quadratic in a piece's length): a 1 MB run of letters or of CJK characters is counted and chunked in a bounded time, with counts within 2 % of gpt-tokenizer's exact ones, and ordinary text counts exactly as gpt-tokenizer counts it.
import { countTokens } from "gpt-tokenizer";
import { chunkText } from "../src/workers/chunk";
import { AS_TEXT, countTextTokens, LONG_RUN } from "../src/tokens";

/** Deterministic text of `n` characters drawn from `alphabet`. */
function run(n: number, alphabet: string): string {
  const chars = [...alphabet];
  let state = 12345;
  let out = "";
  for (let i = 0; i < n; i++) {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    out += chars[state % chars.length];
  }
  return out;
}

const LETTERS = "abcdefghijklmnopqrstuvwxyz";
const CJK = "的一是不了人我在有他这为之大来以个中上们";

/** The best of three runs' milliseconds (a moment of load on a shared machine cannot fail a linear run). */
function bestOfThree(work: () => void): number {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    work();
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

test("ordinary text counts exactly as gpt-tokenizer counts it", () => {
  const words = ["Ada", "Lovelace", "met", "Charles", "Babbage", "in", "London,", "1833.", "The", "engine's", "cards", "(punched)", "—", "naïve", "北京", "🚂"];
  const text = Array.from({ length: 40_000 }, (_, i) => words[(i * 7) % words.length]).join(" ");
  expect(countTextTokens(text)).toBe(countTokens(text, AS_TEXT));
  expect(countTextTokens("<|endoftext|> is text here")).toBe(countTokens("<|endoftext|> is text here", AS_TEXT));
  expect(countTextTokens("")).toBe(0);
});

test.each([
  ["letters", LETTERS],
  ["CJK characters", CJK],
])("a long run of %s counts within 2 %% of the exact count", (_name, alphabet) => {
  // 4,000 characters: gpt-tokenizer's exact count still takes well under a second.
  const text = run(4_000, alphabet);
  const exact = countTokens(text, AS_TEXT);
  const counted = countTextTokens(text);
  expect(text.length).toBeGreaterThan(LONG_RUN * 10);
  expect(Math.abs(counted - exact) / exact).toBeLessThan(0.02);
});

test.each([
  // Before the slicing, the whole 1 MB took about 3 s of letters and 12 s of CJK to chunk on this machine.
  ["letters", LETTERS, 1_500],
  ["CJK characters", CJK, 3_000],
])("1 MB of %s without a space is counted and chunked in a bounded time", (_name, alphabet, boundMs) => {
  const text = run(1_000_000, alphabet);
  let chunks: ReturnType<typeof chunkText> = [];
  const chunking = bestOfThree(() => {
    chunks = chunkText(text, { maxTokens: 1000, overlapTokens: 100 });
  });
  const counting = bestOfThree(() => countTextTokens(text));
  expect(chunking).toBeLessThan(boundMs);
  expect(counting).toBeLessThan(boundMs);
  // Every character is in a chunk, every chunk within its budget, and the counts close to exact ones.
  expect(chunks.map((c) => c.text).join("").length).toBeGreaterThanOrEqual(text.length);
  for (const c of chunks) expect(c.tokens).toBeLessThanOrEqual(1000);
  const sample = chunks.filter((_, i) => i % Math.ceil(chunks.length / 20) === 0);
  const exact = sample.reduce((n, c) => n + countTokens(c.text, AS_TEXT), 0);
  const counted = sample.reduce((n, c) => n + c.tokens, 0);
  expect(Math.abs(counted - exact) / exact).toBeLessThan(0.02);
}, 60_000);
