// The budget holds across worker processes: two real worker processes analyse a batch whose budget covers about half of it; the batch pauses by itself (pause_reason budget), no request the fake provider answered takes it past its budget, and once raised and resumed it completes with every task counted once.
import request from "supertest";
import { costOf } from "../src/pricing";
import { documentOf } from "./support/e2e";
import type { FakeRequest } from "./support/fake-llm";
import { expectBatchInvariants } from "./support/invariants";
import { createSystem, waitFor, waitForStatus, type TestSystem } from "./support/system";

const DOCS = 24;
const PRICE = { input_per_mtok: 1000, output_per_mtok: 2000 };

let s: TestSystem;
beforeAll(async () => {
  s = await createSystem({ workers: false, fake: { latencyMs: 100 }, env: { ANALYSIS_CONCURRENCY: "4", DISPATCH_WINDOW: "8" } });
});
afterAll(() => s.close());

const api = () => request(s.app);
const getBatch = async (id: string) => (await api().get(`/api/batches/${id}`).expect(200)).body.batch;
const billed = (requests: FakeRequest[]) =>
  requests
    .filter((r) => r.status === 200 && r.usage)
    .reduce((sum, r) => sum + costOf({ inputTokens: r.usage!.prompt, cachedInputTokens: r.usage!.cached, outputTokens: r.usage!.completion }, PRICE)!, 0);

test("two worker processes never take a batch past its budget; raised and resumed, it completes with every task once", async () => {
  s.spawnWorker({ OPENAI_API_KEY: "worker-a" });
  s.spawnWorker({ OPENAI_API_KEY: "worker-b" });
  const documents = Array.from({ length: DOCS }, (_, i) => ({
    name: `doc-${String(i).padStart(3, "0")}.txt`,
    content: `Document ${i}. Ada Lovelace met Charles Babbage in London to discuss engines.`,
  }));
  const created = await api()
    .post("/api/batches/stage")
    .send({ name: "budget", analysis: { instructions: "Summarise the document.", model: "gpt-4o-mini", max_tokens: 40, price: PRICE }, documents })
    .expect(201);
  const id = created.body.batch.id as string;
  await waitForStatus(s, id, "STAGED", 90_000);
  const { estimate } = await getBatch(id);
  const budget = Math.round((estimate.cost_usd_max / 2) * 1e6) / 1e6;
  await api().post(`/api/batches/${id}/budget`).send({ budget_usd: budget }).expect(200);

  await api().post(`/api/batches/${id}/run`).expect(200);
  const paused = await waitFor(
    "the budget's pause",
    async () => {
      const b = await getBatch(id);
      return b.status === "PAUSED" && b.progress.running === 0 ? b : undefined;
    },
    90_000,
  );
  await waitFor("every request answered", async () => s.fake.requests.every((r) => r.status !== 0));
  expect(paused).toMatchObject({ pause_reason: "budget", reserved_usd: 0 });
  expect(paused.last_error).toMatch(/^budget reached: spent \$/);
  expect(paused.progress.pending).toBeGreaterThan(0);
  expect(paused.usage.cost_usd).toBeLessThanOrEqual(budget);
  expect(billed(s.fake.requests)).toBeLessThanOrEqual(budget + 1e-9);
  expect(paused.usage.cost_usd).toBeCloseTo(billed(s.fake.requests), 8);
  // Both processes asked the provider: the guard held across them, not within one.
  expect(new Set(s.fake.requests.map((r) => r.apiKey))).toEqual(new Set(["worker-a", "worker-b"]));

  await api().post(`/api/batches/${id}/budget`).send({ budget_usd: estimate.cost_usd_max }).expect(200);
  await api().post(`/api/batches/${id}/resume`).expect(200);
  await waitForStatus(s, id, "COMPLETED", 120_000);
  const done = await getBatch(id);
  expect(done).toMatchObject({ pause_reason: null, progress: { succeeded: DOCS, failed: 0 }, usage: { requests: DOCS } });
  for (const d of documents) {
    expect([d.name, s.fake.requests.filter((r) => r.status === 200 && documentOf(r.body) === d.name).length]).toEqual([d.name, 1]);
  }
  expect(done.usage.cost_usd).toBeCloseTo(billed(s.fake.requests), 8);
  await expectBatchInvariants(s.db.prisma, id);
}, 240_000);
