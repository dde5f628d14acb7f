// What a batch costs, end to end through the real OpenAI SDK and the fake provider: the estimate of a staged batch against tokens and prices computed by hand; an unknown model's null cost with a note; a budget covering about half of a batch pauses it by itself (pause_reason budget, a system history entry) before any request that could pass the budget, and raising it and resuming completes the batch with every task counted once; usage in the results (JSON, JSONL, CSV) adds up to the batch's usage.
import request from "supertest";
import { countTextTokens } from "../src/tokens";
import { costOf } from "../src/pricing";
import { REASK_MAX_TOKENS } from "../src/workers/providers/conversation";
import { documentOf } from "./support/e2e";
import type { FakeRequest } from "./support/fake-llm";
import { expectBatchInvariants } from "./support/invariants";
import { createSystem, waitFor, waitForStatus, type TestSystem } from "./support/system";

let s: TestSystem;
beforeAll(async () => {
  s = await createSystem();
});
afterAll(() => s.close());

const api = () => request(s.app);
const PRICE = { input_per_mtok: 1000, output_per_mtok: 2000 };

async function stageBatch(analysis: Record<string, unknown>, documents: { name: string; content: string }[]) {
  const res = await api()
    .post("/api/batches/stage")
    .send({ name: "cost", analysis: { instructions: "Summarise the document in one sentence.", ...analysis }, documents })
    .expect(201);
  return res.body.batch.id as string;
}

const getBatch = async (id: string) => (await api().get(`/api/batches/${id}`).expect(200)).body.batch;

/** What the fake provider's answered requests cost at `price`, as the provider billed them. */
function billed(requests: FakeRequest[], price: { input_per_mtok: number; output_per_mtok: number }): number {
  return requests
    .filter((r) => r.status === 200 && r.usage)
    .reduce((sum, r) => sum + costOf({ inputTokens: r.usage!.prompt, cachedInputTokens: r.usage!.cached, outputTokens: r.usage!.completion }, price)!, 0);
}

/** RFC 4180: quoted cells may hold commas, quotes (doubled) and newlines. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted && c === '"' && text[i + 1] === '"') {
      cell += '"';
      i++;
    } else if (c === '"') {
      quoted = !quoted;
    } else if (!quoted && (c === "," || c === "\n")) {
      row.push(cell);
      cell = "";
      if (c === "\n") {
        rows.push(row);
        row = [];
      }
    } else {
      cell += c;
    }
  }
  if (cell || row.length) rows.push([...row, cell]);
  return rows;
}

const texts = ["Revenue grew twelve percent in the third quarter.", "The board approved the merger with Initech on Monday.", "Ada Lovelace wrote the first program for the Analytical Engine."];

test("the estimate of a staged batch is the hand-counted tokens of its prompts at its price, re-asks included in the maximum", async () => {
  const schema = { type: "object", required: ["summary"], properties: { summary: { type: "string" } } };
  const instructions = "Summarise the document in one sentence.";
  const docs = texts.map((content, i) => ({ name: `doc-${i}.txt`, content }));
  const id = await stageBatch({ model: "gpt-4o-mini", output_schema: schema, max_tokens: 50, price: PRICE }, docs);
  await waitForStatus(s, id, "STAGED");
  const stored = await s.db.prisma.document.findMany({ where: { batchId: id }, orderBy: { position: "asc" } });
  expect(stored.map((d) => d.text)).toEqual(texts);

  // By hand: the system message (instructions and schema), the user message (name and text), and
  // the chat format's 4 tokens per message and 3 for the reply.
  const system = `${instructions}\n\nAnswer with a single JSON value that matches the JSON Schema below, and nothing else: no prose, no Markdown code fences.\n\nJSON Schema:\n${JSON.stringify(schema)}`;
  const prompts = docs.map((d) => countTextTokens(system) + countTextTokens(`Document: ${d.name}\n\n${d.content}`) + 2 * 4 + 3);
  const reasks = 2; // LLM_OUTPUT_RETRIES' default
  // Ask k carries k earlier answers (50 tokens at most) and k re-ask prompts (at most REASK_MAX_TOKENS), a message each.
  const growth = 50 + REASK_MAX_TOKENS + 2 * 4;
  const inputMax = prompts.reduce((n, p) => n + p * (reasks + 1) + growth * ((reasks * (reasks + 1)) / 2), 0);
  const outputMax = docs.length * (reasks + 1) * 50;

  const { estimate } = await getBatch(id);
  expect(estimate).toMatchObject({
    model: "gpt-4o-mini",
    provider: "openai",
    documents: 3,
    cached_documents: 0,
    requests: 3,
    input_tokens: prompts.reduce((a, b) => a + b, 0),
    requests_max: 9,
    input_tokens_max: inputMax,
    output_tokens_max: outputMax,
    map_reduce_documents: 0,
    price: PRICE,
    price_source: "analysis.price",
    note: null,
  });
  expect(estimate.cost_usd_max).toBeCloseTo((inputMax * 1000 + outputMax * 2000) / 1e6, 8);
  // Each document's worst case is what a start of its task reserves of a budget.
  const perDocument = await s.db.prisma.document.findMany({ where: { batchId: id }, orderBy: { position: "asc" }, select: { costMaxUsd: true } });
  expect(perDocument.reduce((n, d) => n + d.costMaxUsd!, 0)).toBeCloseTo(estimate.cost_usd_max, 8);
});

test("the table's price and its check date when the batch sets none; an unknown model has no cost, with a note", async () => {
  const known = await stageBatch({ model: "gpt-4o-mini", max_tokens: 50 }, [{ name: "a.txt", content: texts[0]! }]);
  const unknown = await stageBatch({ model: "no-such-model-7b", max_tokens: 50 }, [{ name: "a.txt", content: texts[0]! }]);
  await waitForStatus(s, known, "STAGED");
  await waitForStatus(s, unknown, "STAGED");
  const k = (await getBatch(known)).estimate;
  expect(k).toMatchObject({ model: "gpt-4o-mini", price: { input_per_mtok: 0.15, output_per_mtok: 0.6 }, note: null });
  expect(k.price_checked_at).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  expect(k.cost_usd_max).toBeGreaterThan(0);

  const u = (await getBatch(unknown)).estimate;
  expect(u).toMatchObject({ model: "no-such-model-7b", documents: 1, requests: 1, cost_usd_max: null, price: null, price_checked_at: null });
  expect(u.input_tokens).toBeGreaterThan(0);
  expect(u.note).toMatch(/no price is known for model "no-such-model-7b"/);

  // Run, it has no cost either: null with a note, never a number made up.
  await api().post(`/api/batches/${unknown}/run`).expect(200);
  await waitForStatus(s, unknown, "COMPLETED");
  const usage = (await getBatch(unknown)).usage;
  expect(usage).toMatchObject({ requests: 1, cost_usd: null });
  expect(usage.note).toMatch(/no known price/);
  const results = (await api().get(`/api/batches/${unknown}/results?format=json`).expect(200)).body.results;
  expect(results[0]).toMatchObject({ status: "succeeded", cost_usd: null, requests: 1 });
});

test("the budget is validated (400 naming the field) and every change recorded in history", async () => {
  const id = await stageBatch({ max_tokens: 50, budget_usd: 3 }, [{ name: "a.txt", content: texts[0]! }]);
  expect((await getBatch(id)).budget_usd).toBe(3);
  for (const bad of [{ budget_usd: -1 }, { budget_usd: "12" }, {}, { budget_usd: 1, extra: true }]) {
    const res = await api().post(`/api/batches/${id}/budget`).send(bad).expect(400);
    expect(res.body).toMatchObject({ success: false, code: "validation_failed" });
  }
  const set = await api().post(`/api/batches/${id}/budget`).send({ budget_usd: 12.5 }).expect(200);
  expect(set.body.batch).toMatchObject({ budget_usd: 12.5 });
  await api().post(`/api/batches/${id}/budget`).send({ budget_usd: null }).expect(200);
  expect((await getBatch(id)).budget_usd).toBeNull();
  const history = (await api().get(`/api/batches/${id}/history`).expect(200)).body.history.filter((h: { event_type: string }) => h.event_type === "budget");
  expect(history.map((h: { context: unknown }) => h.context)).toEqual([
    { budget_usd: 12.5, previous_budget_usd: 3 },
    { budget_usd: null, previous_budget_usd: 12.5 },
  ]);
  await api().post(`/api/batches/00000000-0000-4000-8000-000000000000/budget`).send({ budget_usd: 1 }).expect(404);
});

test("a budget covering about half of the batch pauses it by itself; raised and resumed, it completes with every task once, and the results add up to its usage", async () => {
  const docs = Array.from({ length: 12 }, (_, i) => ({ name: `doc-${String(i).padStart(3, "0")}.txt`, content: `${texts[i % 3]} Item ${i}.` }));
  const id = await stageBatch({ model: "gpt-4o-mini", max_tokens: 40, price: PRICE }, docs);
  await waitForStatus(s, id, "STAGED");
  const { estimate } = await getBatch(id);
  const budget = Math.round((estimate.cost_usd_max / 2) * 1e6) / 1e6;
  await api().post(`/api/batches/${id}/budget`).send({ budget_usd: budget }).expect(200);

  const before = s.fake.requests.length;
  await api().post(`/api/batches/${id}/run`).expect(200);
  const paused = await waitFor("the budget's pause", async () => {
    const b = await getBatch(id);
    return b.status === "PAUSED" && b.progress.running === 0 ? b : undefined;
  });
  expect(paused.pause_reason).toBe("budget");
  expect(paused.last_error).toMatch(/^budget reached: spent \$\d+\.\d+ of \$\d+\.\d+/);
  expect(paused.usage.cost_usd).toBeLessThanOrEqual(budget);
  expect(paused.reserved_usd).toBe(0);
  // Something ran, and something is left: the budget, not the batch's end, stopped it.
  expect(paused.progress.succeeded).toBeGreaterThan(0);
  expect(paused.progress.pending).toBeGreaterThan(0);
  // Nothing the provider was asked for could take the batch past its budget.
  const firstLeg = s.fake.requests.slice(before);
  expect(billed(firstLeg, PRICE)).toBeLessThanOrEqual(budget + 1e-9);
  expect(paused.usage.cost_usd).toBeCloseTo(billed(firstLeg, PRICE), 8);
  expect(paused.usage.requests).toBe(firstLeg.filter((r) => r.status === 200).length);
  const history = (await api().get(`/api/batches/${id}/history?limit=5000`).expect(200)).body.history;
  const pause = history.find((h: { to: string; outcome: string }) => h.to === "PAUSED" && h.outcome === "accepted");
  expect(pause).toMatchObject({ source: "system", actor: null, event_type: "pause", context: { pause_reason: "budget", budget_usd: budget } });
  expect(pause.reason).toBe(paused.last_error);

  // Resumed without more budget, it runs only what the room left by tasks that cost less than their
  // worst case affords, and pauses again; raised, it goes on where it stopped.
  await api().post(`/api/batches/${id}/resume`).expect(200);
  const again = await waitFor("the budget's second pause", async () => {
    const b = await getBatch(id);
    return b.status === "PAUSED" && b.pause_reason === "budget" && b.progress.running === 0 ? b : undefined;
  });
  expect(again.progress.pending).toBeGreaterThan(0);
  expect(again.usage.cost_usd).toBeLessThanOrEqual(budget);
  expect(billed(s.fake.requests.slice(before), PRICE)).toBeLessThanOrEqual(budget + 1e-9);
  await api().post(`/api/batches/${id}/budget`).send({ budget_usd: estimate.cost_usd_max }).expect(200);
  await api().post(`/api/batches/${id}/resume`).expect(200);
  await waitForStatus(s, id, "COMPLETED");
  const done = await getBatch(id);
  expect(done).toMatchObject({ pause_reason: null, last_error: null, progress: { succeeded: 12, failed: 0 } });
  const all = s.fake.requests.slice(before);
  for (const d of docs) expect([d.name, all.filter((r) => r.status === 200 && documentOf(r.body) === d.name).length]).toEqual([d.name, 1]);
  expect(done.usage.requests).toBe(12);
  expect(done.usage.cost_usd).toBeCloseTo(billed(all, PRICE), 8);
  expect(done.usage.cost_usd).toBeLessThanOrEqual(estimate.cost_usd_max);
  await expectBatchInvariants(s.db.prisma, id);

  // The results, in every format, add up to the batch's usage.
  const json = (await api().get(`/api/batches/${id}/results?format=json`).expect(200)).body.results as Record<string, unknown>[];
  const jsonl = (await api().get(`/api/batches/${id}/results?format=jsonl`).expect(200)).text.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
  const [header, ...lines] = parseCsv((await api().get(`/api/batches/${id}/results?format=csv`).expect(200)).text);
  const csv = lines.map((cells) => Object.fromEntries(header!.map((h, i) => [h, cells[i]])));
  for (const rows of [json, jsonl, csv]) {
    expect(rows).toHaveLength(12);
    const sum = (field: string) => rows.reduce((n, r) => n + Number(r[field]), 0);
    expect(sum("cost_usd")).toBeCloseTo(done.usage.cost_usd, 8);
    expect(sum("requests")).toBe(done.usage.requests);
    expect(sum("input_tokens")).toBe(done.usage.input_tokens);
    expect(sum("output_tokens")).toBe(done.usage.output_tokens);
    expect(sum("cached_input_tokens")).toBe(done.usage.cached_input_tokens);
    expect(rows.every((r) => String(r.cached) === "false" && r.strategy === "single")).toBe(true);
  }
});
