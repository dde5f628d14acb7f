// Token counting stays linear on text without spaces (gpt-tokenizer alone is quadratic in a piece's length): 1 MB of letters or of CJK characters without a space is counted and chunked about as fast as ordinary prose of the same size, with counts within 2 % of gpt-tokenizer's exact ones, and ordinary text counts exactly as gpt-tokenizer counts it.
import { countTokens } from "gpt-tokenizer";
import { chunkText } from "../src/workers/chunk";
import { AS_TEXT, countTextTokens, LONG_RUN } from "../src/tokens";

/** Deterministic text of `n` characters drawn from `alphabet`. */
function run(n: number, alphabet: string, seed = 12345): string {
  const chars = [...alphabet];
  let state = seed;
  let out = "";
  for (let i = 0; i < n; i++) {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    out += chars[state % chars.length];
  }
  return out;
}

const LETTERS = "abcdefghijklmnopqrstuvwxyz";
const CJK = "的一是不了人我在有他这为之大来以个中上们";
const WORDS = ["Amara", "Nwosu", "reviewed", "the", "quarterly", "freight", "figures;", "a", "proposal", "from", "Danube", "Commission.", "Several", "complaints", "about", "late", "deliveries", "in", "Marseille,", "and"];

/** About 1 MB of ordinary prose: the baseline a pathological text is measured against. */
function prose(seed: number): string {
  let state = seed;
  const out: string[] = [];
  for (let length = 0; length < 1_000_000; ) {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    const word = WORDS[state % WORDS.length]!;
    out.push(word);
    length += word.length + 1;
  }
  return out.join(" ").slice(0, 1_000_000);
}

/**
 * The best of three runs' milliseconds, each on fresh text (the tokenizer caches what it has merged, so
 * the same text twice would measure the cache), so a moment of load on a shared machine cannot fail it.
 */
function bestOfThree(make: (seed: number) => string, work: (text: string) => void): number {
  let best = Infinity;
  for (let seed = 1; seed <= 3; seed++) {
    const text = make(seed);
    const started = performance.now();
    work(text);
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

const chunk = (text: string) => chunkText(text, { maxTokens: 1000, overlapTokens: 100 });

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

// Measured first: after a pathological text has filled the tokenizer's merge cache, prose runs slower.
let baseline = Infinity;
beforeAll(() => {
  baseline = bestOfThree(prose, chunk);
});

test.each([
  // Measured against ordinary prose of the same size on the same machine at the same moment. Before the
  // slicing, 1 MB took about 25 times as long as prose to chunk as letters, and 30 times as CJK; now
  // about 2 and 4 times.
  ["letters", LETTERS, 6],
  ["CJK characters", CJK, 10],
])("1 MB of %s without a space is counted and chunked about as fast as prose", (name, alphabet, times) => {
  const chunking = bestOfThree((seed) => run(1_000_000, alphabet, seed), chunk);
  const counting = bestOfThree((seed) => run(1_000_000, alphabet, seed + 10), countTextTokens);
  process.stdout.write(`1 MB: prose chunked in ${baseline.toFixed(0)} ms; ${name} chunked in ${chunking.toFixed(0)} ms, counted in ${counting.toFixed(0)} ms\n`);
  expect(chunking).toBeLessThan(times * baseline);
  expect(counting).toBeLessThan(times * baseline);

  // Every character is in a chunk, every chunk within its budget, and the counts close to exact ones.
  const text = run(1_000_000, alphabet);
  const chunks = chunk(text);
  expect(chunks.map((c) => c.text).join("").length).toBeGreaterThanOrEqual(text.length);
  for (const c of chunks) expect(c.tokens).toBeLessThanOrEqual(1000);
  const sample = chunks.filter((_, i) => i % Math.ceil(chunks.length / 20) === 0);
  const exact = sample.reduce((n, c) => n + countTokens(c.text, AS_TEXT), 0);
  const counted = sample.reduce((n, c) => n + c.tokens, 0);
  expect(Math.abs(counted - exact) / exact).toBeLessThan(0.02);
}, 120_000);
