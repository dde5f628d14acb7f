// The price table: lookups by id, alias, dated snapshot and router prefix; costOf against hand-computed numbers; an unknown model has no price (null and a note); LLM_PRICES_FILE and a batch's own price and context window override; the built-in entries agree with @pydantic/genai-prices.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { calcPrice } from "@pydantic/genai-prices";
import { BUILTIN_MODELS, costOf, loadPriceTable, PriceFileError, priceFor } from "../src/pricing";
import { analysisSchema } from "../src/server/http-schemas";

const table = loadPriceTable();

describe("price lookup", () => {
  it("finds a model by id, alias, dated snapshot and vendor/ prefix", () => {
    expect(priceFor("gpt-4o-mini", table)).toMatchObject({
      price: { input_per_mtok: 0.15, cached_input_per_mtok: 0.075, output_per_mtok: 0.6 },
      contextTokens: 128_000,
      maxOutputTokens: 16_384,
      source: expect.stringContaining("openai.com"),
      checkedAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/),
      note: null,
    });
    expect(table.lookup("gpt-4o-mini-2024-07-18")?.id).toBe("gpt-4o-mini");
    expect(table.lookup("claude-3-5-haiku-latest")?.id).toBe("claude-3-5-haiku-20241022");
    expect(table.lookup("gpt-4.1-2031-01-01")?.id).toBe("gpt-4.1");
    expect(table.lookup("openai/gpt-4o")?.id).toBe("gpt-4o");
    expect(table.lookup("GPT-4O")?.id).toBe("gpt-4o");
    // An older snapshot with its own price is not folded into its family.
    expect(priceFor("gpt-4o-2024-05-13", table).price).toMatchObject({ input_per_mtok: 5, output_per_mtok: 15 });
  });

  it("has a price, a context window, a maximum output, batch prices, a date and a source for every entry", () => {
    const required = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o1", "o3", "o3-mini", "o4-mini"];
    const claude = ["claude-3-5-haiku-latest", "claude-3-5-sonnet-latest", "claude-3-7-sonnet-latest", "claude-sonnet-4-0", "claude-opus-4-0"];
    for (const model of [...required, ...claude]) expect(table.lookup(model)).toBeDefined();
    for (const e of BUILTIN_MODELS) {
      expect(e).toMatchObject({ context_tokens: expect.any(Number), max_output_tokens: expect.any(Number), cached_input_per_mtok: expect.any(Number) });
      expect(e.batch?.input_per_mtok).toBeLessThan(e.input_per_mtok);
      expect(e.source).toMatch(/^https:\/\//);
    }
  });

  it("gives an unknown model no price and says why, never a guess", () => {
    const info = priceFor("my-local-llama", table);
    expect(info).toMatchObject({ price: null, contextTokens: null, source: null });
    expect(info.note).toMatch(/no price is known for model "my-local-llama".*analysis\.price.*LLM_PRICES_FILE/);
    expect(costOf({ inputTokens: 1000, cachedInputTokens: 0, outputTokens: 10 }, info.price)).toBeNull();
  });

  it("lets a batch's price and context window win over the table, also for a model it lacks", () => {
    const price = { input_per_mtok: 1, cached_input_per_mtok: 0.5, output_per_mtok: 2 };
    expect(priceFor("gpt-4o", table, { price, contextTokens: 8_000 })).toMatchObject({ price, contextTokens: 8_000, source: "analysis.price", note: null });
    expect(priceFor("my-local-llama", table, { price })).toMatchObject({ price, note: null });
  });
});

describe("costOf", () => {
  it("prices input, cached input and output at their own rates (hand-computed)", () => {
    const gpt4oMini = priceFor("gpt-4o-mini", table).price;
    // 10,000 input of which 4,000 cached, 2,000 output:
    // 6,000 × 0.15 + 4,000 × 0.075 + 2,000 × 0.60 = 900 + 300 + 1,200 = 2,400 µ$ = $0.0024
    expect(costOf({ inputTokens: 10_000, cachedInputTokens: 4_000, outputTokens: 2_000 }, gpt4oMini)).toBe(0.0024);
    const sonnet = priceFor("claude-sonnet-4-20250514", table).price;
    // 1,000 plain × 3 + 8,000 cache reads × 0.30 + 1,000 cache writes × 3.75 + 500 output × 15
    // = 3,000 + 2,400 + 3,750 + 7,500 = 16,650 µ$ = $0.01665
    expect(costOf({ inputTokens: 10_000, cachedInputTokens: 8_000, cacheWriteTokens: 1_000, outputTokens: 500 }, sonnet)).toBe(0.01665);
    // No cached rate: cached input is billed as input. 1M × 2 + 1M × 4 = $6.
    expect(costOf({ inputTokens: 1_000_000, cachedInputTokens: 500_000, outputTokens: 1_000_000 }, { input_per_mtok: 2, output_per_mtok: 4 })).toBe(6);
  });

  it("adds up without float noise", () => {
    const price = priceFor("gpt-4.1-nano", table).price;
    let total = 0;
    for (let i = 0; i < 1000; i++) total += costOf({ inputTokens: 3, cachedInputTokens: 0, outputTokens: 1 }, price)!;
    // 1000 × (3 × 0.1 + 0.4) µ$ = 700 µ$
    expect(Math.round(total * 1e8) / 1e8).toBe(0.0007);
  });
});

describe("LLM_PRICES_FILE", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "tranche-prices-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("replaces built-in entries by id and adds new ones", () => {
    const file = path.join(dir, "prices.json");
    const entry = { provider: "openai", input_per_mtok: 9, cached_input_per_mtok: 1, output_per_mtok: 9, context_tokens: 4096, max_output_tokens: 1024, checked_at: "2026-11-30", source: "our contract" };
    writeFileSync(file, JSON.stringify({ models: [{ id: "gpt-4o-mini", ...entry }, { id: "house-model", aliases: ["house"], ...entry, output_per_mtok: 3 }] }));
    const custom = loadPriceTable(file);
    expect(priceFor("gpt-4o-mini", custom)).toMatchObject({ price: { input_per_mtok: 9 }, contextTokens: 4096, source: "our contract" });
    // The built-in aliases of a replaced entry go away with it; its id stays.
    expect(custom.lookup("gpt-4o-mini-2024-07-18")?.source).toBe("our contract");
    expect(priceFor("house", custom).price?.output_per_mtok).toBe(3);
    expect(priceFor("gpt-4o", custom).price?.input_per_mtok).toBe(2.5);
  });

  it("refuses a file with a bad entry, naming the field", () => {
    const file = path.join(dir, "bad.json");
    writeFileSync(file, JSON.stringify({ models: [{ id: "x", provider: "openai", input_per_mtok: -1, output_per_mtok: 1, checked_at: "2026-11-30", source: "s" }] }));
    expect(() => loadPriceTable(file)).toThrow(PriceFileError);
    expect(() => loadPriceTable(file)).toThrow(/models\.0\.input_per_mtok/);
    expect(() => loadPriceTable(path.join(dir, "missing.json"))).toThrow(/missing\.json/);
  });
});

describe("analysis.price and analysis.context_tokens at creation", () => {
  it("accepts a price and a context window, and names what is wrong", () => {
    const ok = analysisSchema.safeParse({ instructions: "x", price: { input_per_mtok: 1, output_per_mtok: 2 }, context_tokens: 32_000 });
    expect(ok.success).toBe(true);
    const bad = analysisSchema.safeParse({ instructions: "x", price: { input_per_mtok: -1, output_per_mtok: 2, per_request: 1 }, context_tokens: 10 });
    expect(bad.success).toBe(false);
    const paths = bad.error!.issues.map((i) => i.path.join("."));
    expect(paths).toEqual(expect.arrayContaining(["price.input_per_mtok", "context_tokens", "price"]));
  });
});

describe("the built-in table against @pydantic/genai-prices", () => {
  // Every entry is known there too; the input, cached-input and output prices agree exactly and the context
  // windows within 5% (OpenAI's 1,047,576 is listed there as 1,000,000).
  it.each(BUILTIN_MODELS.map((e) => [e.id, e] as const))("%s", (id, entry) => {
    const theirs = calcPrice({ input_tokens: 1_000_000, cache_read_tokens: 0, output_tokens: 0 }, id);
    if (!theirs) throw new Error(`genai-prices does not know ${id}`);
    const rate = (key: string) => {
      const v = theirs.model_price[key];
      return typeof v === "object" ? v.base : v;
    };
    expect(entry.input_per_mtok).toBe(rate("input_mtok"));
    expect(entry.output_per_mtok).toBe(rate("output_mtok"));
    if (rate("cache_read_mtok") !== undefined) expect(entry.cached_input_per_mtok).toBe(rate("cache_read_mtok"));
    if (rate("cache_write_mtok") !== undefined) expect(entry.cache_write_per_mtok).toBe(rate("cache_write_mtok"));
    if (theirs.model.context_window) expect(Math.abs(entry.context_tokens! - theirs.model.context_window) / theirs.model.context_window).toBeLessThan(0.05);
  });
});
