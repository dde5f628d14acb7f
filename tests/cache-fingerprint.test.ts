// The result cache's analysis fingerprint, as tables: what makes two analyses one (key order, defaults spelt out) and what tells them apart (every field the provider's answer depends on).
import { batchFingerprint, canonicalJson, fingerprintOf, PROMPT_VERSION, targetOf, type CacheKeyConfig } from "../src/cache/fingerprint";
import { analysisSchema } from "../src/server/http-schemas";

const config: CacheKeyConfig = { LLM_PROVIDER: "openai", OPENAI_BASE_URL: "http://127.0.0.1:9999/v1", CHUNK_MAX_TOKENS: 1000, CHUNK_OVERLAP_TOKENS: 100 };
const base = { instructions: "Summarise the document." };
const fp = (analysis: Record<string, unknown>, c: CacheKeyConfig = config) => batchFingerprint(analysisSchema.parse(analysis), c);

test.each([
  [{ b: 1, a: 2 }, `{"a":2,"b":1}`],
  [{ z: { y: [3, { d: 1, c: 2 }], x: null } }, `{"z":{"x":null,"y":[3,{"c":2,"d":1}]}}`],
  [{ a: undefined, b: "x" }, `{"b":"x"}`],
  [[1, "two", true, null], `[1,"two",true,null]`],
  [{ "é": 1, e: 2, E: 3 }, `{"E":3,"e":2,"é":1}`],
  ["text", `"text"`],
])("canonicalJson(%j) is %s", (value, expected) => {
  expect(canonicalJson(value)).toBe(expected);
});

describe("the same fingerprint", () => {
  const schemaAB = { type: "object", properties: { a: { type: "string" }, b: { type: "number" } }, required: ["a"] };
  const schemaBA = { required: ["a"], properties: { b: { type: "number" }, a: { type: "string" } }, type: "object" };
  test.each<[string, Record<string, unknown>, Record<string, unknown>, CacheKeyConfig?]>([
    ["output schema keys in another order", { ...base, output_schema: schemaAB }, { ...base, output_schema: schemaBA }],
    ["the default model named or not", base, { ...base, model: "gpt-4o-mini" }],
    ["the configured provider named or not", base, { ...base, provider: "openai" }],
    ["LLM_MODEL as the default, named by the batch", { ...base, model: "gpt-4o" }, base, { ...config, LLM_MODEL: "gpt-4o" }],
    ["instructions with surrounding blanks (trimmed on input)", base, { instructions: "  Summarise the document.\n" }],
    ["`cache: true` spelt out", base, { ...base, cache: true }],
    ["a price override (cost, not the answer)", base, { ...base, price: { input_per_mtok: 1, output_per_mtok: 2 } }],
    ["failure tolerances", base, { ...base, failure_tolerance: 0.5, staging_tolerance: 0.2 }],
    ["the offline analyzer, whatever model is named", { ...base, provider: "local" }, { ...base, provider: "local", model: "gpt-4o" }],
  ])("%s", (_why, a, b, c = config) => {
    expect(fp(a, c)).toBe(fp(b, c));
  });
});

describe("another fingerprint", () => {
  test.each<[string, Record<string, unknown>, CacheKeyConfig?]>([
    ["other instructions", { instructions: "List the parties." }],
    ["another model", { ...base, model: "gpt-4o" }],
    ["another provider", { ...base, provider: "anthropic" }],
    ["an output schema", { ...base, output_schema: { type: "object" } }],
    ["another output schema", { ...base, output_schema: { type: "object", required: ["a"] } }],
    ["a temperature", { ...base, temperature: 0 }],
    ["max tokens", { ...base, max_tokens: 100 }],
    ["a context window of its own (map-reduce or not)", { ...base, context_tokens: 4096 }],
    ["another compatible server", base, { ...config, OPENAI_BASE_URL: "http://127.0.0.1:8888/v1" }],
    ["another default model", base, { ...config, LLM_MODEL: "gpt-4o" }],
    ["other chunks", base, { ...config, CHUNK_MAX_TOKENS: 500 }],
    ["another chunk overlap", base, { ...config, CHUNK_OVERLAP_TOKENS: 0 }],
  ])("%s", (_why, analysis, c = config) => {
    expect(fp(analysis, c)).not.toBe(fp(base));
  });

  test("a new prompt version", () => {
    const target = targetOf(analysisSchema.parse(base), config);
    expect(fingerprintOf(target)).toBe(fp(base));
    expect(fingerprintOf(target)).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprintOf(target, PROMPT_VERSION + 1)).not.toBe(fingerprintOf(target));
  });
});

test("`cache: false` keeps a batch out of the cache; unset is in it", () => {
  expect(fp({ ...base, cache: false })).toBeNull();
  expect(fp(base)).toBe(fp({ ...base, cache: true }));
  expect(fp(base)).toMatch(/^[0-9a-f]{64}$/);
});
