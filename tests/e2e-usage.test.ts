// Provider usage end to end through the real OpenAI SDK and the fake provider: requests, input, cached-input and output tokens and the cost reach the task rows; a document three times the context window is analysed map-reduce into one schema-valid result with its calls counted, also when a run of its job fails midway and is retried; the provider's context-length 400 fails the task at once, never retried.
import Ajv from "ajv";
import { costOf, loadPriceTable, priceFor } from "../src/pricing";
import { act, documentOf, uploadBatch } from "./support/e2e";
import { replies } from "./support/fake-llm";
import { createSystem, waitForStatus, type TestSystem } from "./support/system";
import request from "supertest";

const CONTEXT = 1200;
const schema = {
  type: "object",
  required: ["summary", "topics"],
  properties: { summary: { type: "string" }, topics: { type: "array", items: { type: "string" }, minItems: 1 } },
};

let s: TestSystem;
beforeAll(async () => {
  s = await createSystem({ fake: { contextTokens: CONTEXT }, env: { CHUNK_MAX_TOKENS: "200", CHUNK_OVERLAP_TOKENS: "0" } });
});
afterAll(() => s.close());

/** About `tokens` tokens of varied prose. */
function longText(tokens: number): string {
  const words = "the supplier shall deliver each invoice within thirty days of the quarter and report revenue growth by region".split(" ");
  const out: string[] = [];
  for (let i = 0; out.length < tokens; i++) out.push(`${words[i % words.length]}${i % 17 === 0 ? "." : ""}`);
  return out.join(" ");
}

async function createBatch(analysis: Record<string, unknown>, documents: { name: string; content: string }[]) {
  const res = await request(s.app)
    .post("/api/batches/stage")
    .send({ name: "usage", analysis: { instructions: "Summarise the document and list its topics.", ...analysis }, documents })
    .expect(201);
  return res.body.batch.id as string;
}

const tasksOf = (batchId: string) =>
  s.db.prisma.task.findMany({ where: { batchId }, include: { document: { select: { name: true } } }, orderBy: { position: "asc" } });

test("usage, cached tokens and cost reach the task rows", async () => {
  const id = await uploadBatch(s, { texts: 4, analysis: { model: "gpt-4o-mini" } });
  await act(s, id, "stage");
  await waitForStatus(s, id, "STAGED");
  const before = s.fake.requests.length;
  await act(s, id, "run");
  await waitForStatus(s, id, "COMPLETED");
  const sent = s.fake.requests.slice(before);
  const price = priceFor("gpt-4o-mini", loadPriceTable()).price;
  const tasks = await tasksOf(id);
  expect(tasks).toHaveLength(4);
  for (const task of tasks) {
    const mine = sent.filter((r) => documentOf(r.body) === task.document.name);
    expect(mine).toHaveLength(1);
    const usage = mine[0]!.usage!;
    expect(task).toMatchObject({ requests: 1, inputTokens: usage.prompt, cachedInputTokens: usage.cached, outputTokens: usage.completion, strategy: "single" });
    expect(task.costUsd).toBeCloseTo(costOf({ inputTokens: usage.prompt, cachedInputTokens: usage.cached, outputTokens: usage.completion }, price)!, 10);
  }
  // The instructions come first and are the same for every task, so the provider's cache serves them after the first.
  expect(tasks.filter((t) => t.cachedInputTokens! > 0).length).toBeGreaterThanOrEqual(3);
  expect(tasks.every((t) => t.cachedInputTokens! < t.inputTokens!)).toBe(true);
});

test("a document three times the context window is analysed map-reduce into one schema-valid result", async () => {
  const long = longText(CONTEXT * 3);
  const id = await createBatch({ model: "gpt-4o-mini", output_schema: schema, max_tokens: 100, context_tokens: CONTEXT }, [
    { name: "long.txt", content: long },
    { name: "short.txt", content: "A short note on quarterly revenue." },
  ]);
  await waitForStatus(s, id, "STAGED");
  const before = s.fake.requests.length;
  await act(s, id, "run");
  await waitForStatus(s, id, "COMPLETED");
  const sent = s.fake.requests.slice(before);
  const [longTask, shortTask] = await tasksOf(id);
  const longCalls = sent.filter((r) => documentOf(r.body) === "long.txt");
  // Every part and the combining request fit the window with room for the answer: nothing was refused.
  expect(longCalls.every((r) => r.status === 200 && r.promptTokens + 100 <= CONTEXT)).toBe(true);
  expect(longCalls.length).toBeGreaterThanOrEqual(4);
  expect(longTask).toMatchObject({ status: "succeeded", strategy: "map_reduce", requests: longCalls.length });
  expect(longTask!.inputTokens).toBe(longCalls.reduce((n, r) => n + r.usage!.prompt, 0));
  expect(longTask!.outputTokens).toBe(longCalls.reduce((n, r) => n + r.usage!.completion, 0));
  expect(new Ajv().validate(schema, longTask!.output)).toBe(true);
  // The last call combined the parts' answers.
  const last = JSON.stringify(longCalls[longCalls.length - 1]!.body.messages);
  expect(last).toContain("Combine the answers below");
  expect(shortTask).toMatchObject({ status: "succeeded", strategy: "single", requests: 1 });
  // Every call is in the batch's usage, and the estimate planned the long one map-reduce with at least its calls.
  const batch = (await request(s.app).get(`/api/batches/${id}`).expect(200)).body.batch;
  expect(batch.usage).toMatchObject({
    requests: longCalls.length + 1,
    input_tokens: sent.reduce((n, r) => n + r.usage!.prompt, 0),
    output_tokens: sent.reduce((n, r) => n + r.usage!.completion, 0),
  });
  expect(batch.usage.cost_usd).toBeCloseTo(longTask!.costUsd! + shortTask!.costUsd!, 8);
  expect(batch.estimate).toMatchObject({ documents: 2, map_reduce_documents: 1 });
  expect(batch.estimate.requests).toBeGreaterThanOrEqual(longCalls.length + 1);
});

test("the provider's context-length 400 fails the task at once, without a retry", async () => {
  // No context window known for this model, so the long document goes as one request and is refused.
  const id = await createBatch({ model: "fake-small", max_tokens: 100, failure_tolerance: 1 }, [{ name: "huge.txt", content: longText(CONTEXT * 2) }]);
  await waitForStatus(s, id, "STAGED");
  const before = s.fake.requests.length;
  await act(s, id, "run");
  await waitForStatus(s, id, "COMPLETED");
  const sent = s.fake.requests.slice(before);
  expect(sent.map((r) => r.status)).toEqual([400]);
  const [task] = await tasksOf(id);
  expect(task).toMatchObject({ status: "failed", requests: 0, costUsd: null });
  expect(task!.error).toMatch(/maximum context length is 1200 tokens/);
});

test("what a failed run of the job billed still counts when the job is run again", async () => {
  const id = await createBatch({ model: "gpt-4o-mini", max_tokens: 100, context_tokens: CONTEXT }, [{ name: "long.txt", content: longText(CONTEXT * 3) }]);
  await waitForStatus(s, id, "STAGED");
  // The first part is answered, then every retry of the second fails: the job gives up and is run again.
  s.fake.setBehaviour({ contextTokens: CONTEXT, respond: (body, n) => (n >= 2 && n <= 5 ? replies.serverError(503) : replies.default(body)) });
  const before = s.fake.requests.length;
  try {
    await act(s, id, "run");
    await waitForStatus(s, id, "COMPLETED");
  } finally {
    s.fake.setBehaviour({ contextTokens: CONTEXT });
  }
  const answered = s.fake.requests.slice(before).filter((r) => r.status === 200);
  const [task] = await tasksOf(id);
  expect(s.fake.requests.slice(before).filter((r) => r.status === 503)).toHaveLength(4);
  expect(task).toMatchObject({ status: "succeeded", strategy: "map_reduce", requests: answered.length });
  expect(task!.inputTokens).toBe(answered.reduce((n, r) => n + r.usage!.prompt, 0));
});
