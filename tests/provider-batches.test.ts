// The provider batch lane's clients (OpenAI Batch API, Anthropic Message Batches) through the real SDKs
// against the fake batch server: submit, progress, find an unrecorded submission, cancel, expire,
// per-line errors, validation failures, and splitting a run under the providers' limits.
import { createAnthropicBatchClient } from "../src/workers/providers/batch/anthropic-batches";
import { type BatchClient, type BatchRequestLine, type LineResult, splitIntoParts } from "../src/workers/providers/batch/lane";
import { createOpenAIBatchClient } from "../src/workers/providers/batch/openai-batches";
import { type FakeBatches, startFakeBatches } from "./support/fake-batches";

const schema = { type: "object", properties: { summary: { type: "string" } }, required: ["summary"] };

const lines = (n: number, prefix = "task"): BatchRequestLine[] =>
  Array.from({ length: n }, (_, i) => ({
    customId: `${prefix}-${i}`,
    model: "gpt-4o-mini",
    system: "Summarise the document.",
    user: `Document: doc-${i}.txt\n\nThe text of document number ${i}.`,
    schema,
    maxTokens: 200,
  }));

async function collect(results: AsyncIterable<LineResult>): Promise<Map<string, LineResult>> {
  const byId = new Map<string, LineResult>();
  for await (const r of results) {
    expect(byId.has(r.customId)).toBe(false);
    byId.set(r.customId, r);
  }
  return byId;
}

let fake: FakeBatches;
beforeEach(async () => {
  fake = await startFakeBatches({ processMs: Infinity });
});
afterEach(() => fake.close());

const clients: [string, () => BatchClient][] = [
  ["openai", () => createOpenAIBatchClient({ baseURL: fake.openaiUrl, apiKey: "sk-test", timeoutMs: 5000 })],
  ["anthropic", () => createAnthropicBatchClient({ baseURL: fake.anthropicUrl, apiKey: "sk-ant-test", timeoutMs: 5000 })],
];

describe.each(clients)("%s batch client", (kind, make) => {
  test("submits every line once, shows progress while open and streams every result when it ends", async () => {
    const client = make();
    const submitted = await client.submit(lines(5), { tranche_batch: "b1", tranche_run: "1", tranche_part: "p1" });
    expect(submitted.status).not.toBe("ended");
    expect(fake.batches).toHaveLength(1);
    expect(fake.batches[0]?.lines.map((l) => l.customId)).toEqual(lines(5).map((l) => l.customId));

    const open = await client.retrieve(submitted.id);
    expect(open.status).toBe("in_progress");
    expect(open.counts).toEqual({ total: 5, succeeded: 0, failed: 0 });

    fake.finish(submitted.id);
    const ended = await client.retrieve(submitted.id);
    expect(ended.status).toBe("ended");
    expect(ended.counts).toEqual({ total: 5, succeeded: 5, failed: 0 });

    const results = await collect(client.results(submitted.id));
    expect(results.size).toBe(5);
    for (const r of results.values()) {
      if (r.kind !== "succeeded") throw new Error(`unexpected ${r.kind}`);
      expect(r.usage.inputTokens).toBeGreaterThan(0);
      expect(r.usage.outputTokens).toBeGreaterThan(0);
      expect(r.model).toBe("gpt-4o-mini");
      if (kind === "openai") expect(JSON.parse(r.text)).toHaveProperty("summary");
    }
  });

  test("finds a submission that was created but never recorded, and nothing older", async () => {
    const client = make();
    const before = new Date(Date.now() - 2000);
    await client.submit(lines(3, "old"), { tranche_batch: "other", tranche_run: "1", tranche_part: "p0" });
    const mine = await client.submit(lines(4), { tranche_batch: "b1", tranche_run: "2", tranche_part: "p7" });
    const found = await client.find({ metadata: { tranche_batch: "b1", tranche_run: "2", tranche_part: "p7" }, since: before, total: 4 });
    expect(found.map((b) => b.id)).toEqual([mine.id]);
    const later = await client.find({ metadata: { tranche_batch: "b1", tranche_run: "2", tranche_part: "p7" }, since: new Date(Date.now() + 5000), total: 4 });
    expect(later).toEqual([]);
  });

  test("a cancel keeps what was answered and cancels the rest", async () => {
    fake.setBehaviour({ processMs: 400, cancelMs: 0 });
    const client = make();
    const submitted = await client.submit(lines(10), { tranche_batch: "b1", tranche_run: "1", tranche_part: "p1" });
    await new Promise((r) => setTimeout(r, 150));
    await client.cancel(submitted.id);
    const ended = await client.retrieve(submitted.id);
    expect(ended.status).toBe("ended");
    const results = await collect(client.results(submitted.id));
    const kinds = [...results.values()].map((r) => r.kind);
    expect(results.size).toBe(10);
    expect(kinds.filter((k) => k === "succeeded").length).toBeGreaterThan(0);
    expect(kinds.filter((k) => k === "cancelled").length).toBeGreaterThan(0);
    expect(kinds.filter((k) => k === "succeeded").length).toBe(fake.billedLines().length);
    expect(ended.counts.succeeded).toBe(fake.billedLines().length);
  });

  test("expired lines and per-line errors come back as such, retryable where a live call would be", async () => {
    const client = make();
    const submitted = await client.submit(lines(4), { tranche_batch: "b1", tranche_run: "1", tranche_part: "p1" });
    const record = fake.batches[0];
    if (!record) throw new Error("no batch");
    // Two lines answered, then the window runs out.
    record.outcomes.set("task-0", { kind: "error", status: 400, message: "bad request", type: "invalid_request_error" });
    record.outcomes.set("task-1", { kind: "error", status: 529, message: "overloaded", type: "overloaded_error" });
    fake.expire(submitted.id);
    const results = await collect(client.results(submitted.id));
    expect(results.get("task-0")).toMatchObject({ kind: "errored", retryable: false });
    expect(results.get("task-1")).toMatchObject({ kind: "errored", retryable: true });
    expect(results.get("task-2")).toEqual({ customId: "task-2", kind: "expired" });
    expect(results.get("task-3")).toEqual({ customId: "task-3", kind: "expired" });
    expect(fake.billedLines()).toEqual([]);
  });

  test("bad credentials are the SDK's 401, not a batch", async () => {
    fake.setBehaviour({ unauthorized: true });
    await expect(make().submit(lines(1), { tranche_batch: "b1", tranche_run: "1", tranche_part: "p1" })).rejects.toMatchObject({ status: 401 });
    expect(fake.batches).toHaveLength(0);
  });
});

test("an OpenAI batch refused at validation is failed with the provider's reasons", async () => {
  fake.setBehaviour({ validate: (ls) => (ls.length > 2 ? ["too many lines for this test"] : []) });
  const client = createOpenAIBatchClient({ baseURL: fake.openaiUrl, apiKey: "sk-test", timeoutMs: 5000 });
  const submitted = await client.submit(lines(3), { tranche_batch: "b1", tranche_run: "1", tranche_part: "p1" });
  const batch = await client.retrieve(submitted.id);
  expect(batch.status).toBe("failed");
  expect(batch.errors).toEqual(["line 1: too many lines for this test"]);
});

describe("splitIntoParts", () => {
  const size = () => 100;
  test("keeps order and stays within the request and byte limits", () => {
    const all = lines(25);
    const byCount = splitIntoParts(all, { maxRequests: 10, maxBytes: 1e9 }, size);
    expect(byCount.parts.map((p) => p.length)).toEqual([10, 10, 5]);
    expect(byCount.parts.flat()).toEqual(all);
    const byBytes = splitIntoParts(all, { maxRequests: 1000, maxBytes: 750 }, size);
    expect(byBytes.parts.map((p) => p.length)).toEqual([7, 7, 7, 4]);
  });
  test("a line larger than a whole batch may carry is set apart, not sent", () => {
    const all = lines(3);
    const { parts, oversize } = splitIntoParts(all, { maxRequests: 10, maxBytes: 150 }, (l) => (l.customId === "task-1" ? 200 : 100));
    expect(oversize.map((l) => l.customId)).toEqual(["task-1"]);
    expect(parts.map((p) => p.map((l) => l.customId))).toEqual([["task-0"], ["task-2"]]);
  });
  test("the OpenAI client's line size is its JSONL line", () => {
    const client = createOpenAIBatchClient({ baseURL: "http://127.0.0.1:9/v1", apiKey: "x", timeoutMs: 1000 });
    const line = lines(1)[0];
    if (!line) throw new Error("no line");
    const bytes = client.lineBytes(line);
    expect(bytes).toBeGreaterThan(Buffer.byteLength(line.user));
    expect(bytes).toBeLessThan(2000);
  });
});
