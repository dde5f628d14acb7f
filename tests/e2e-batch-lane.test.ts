// The provider batch lane end to end: real PostgreSQL, Redis and workers, the real OpenAI and Anthropic
// SDKs against the fake batch APIs. A run split over provider batches, each task paid once; pause,
// resume and cancel mapped onto provider batches (finished lines kept); expired lines resubmitted or
// failed; a submission that lost its answer found again instead of paid twice; retry-failed sending
// only the failed tasks; bad credentials failing the batch once.
import request from "supertest";
import { costOf, loadPriceTable, priceFor } from "../src/pricing";
import { startFakeBatches, type FakeBatches } from "./support/fake-batches";
import { createSystem, waitFor, waitForStatus, type TestSystem } from "./support/system";

const schema = { type: "object", required: ["summary"], properties: { summary: { type: "string" } } };

let fake: FakeBatches;
let s: TestSystem;
beforeAll(async () => {
  fake = await startFakeBatches({ processMs: 200 });
  s = await createSystem({
    env: {
      OPENAI_BASE_URL: fake.openaiUrl,
      ANTHROPIC_BASE_URL: fake.anthropicUrl,
      ANTHROPIC_API_KEY: "sk-ant-test",
      LANE_MAX_REQUESTS: "4",
      LANE_POLL_MS: "100",
      LANE_POLL_MAX_MS: "200",
    },
  });
});
afterAll(async () => {
  await s.close();
  await fake.close();
});
beforeEach(() => fake.setBehaviour({ processMs: 200 }));

/** Every test stages the same documents: kept out of the result cache, each batch's tasks all go to the provider. */
async function stagedBatch(n: number, analysis: Record<string, unknown> = {}) {
  const documents = Array.from({ length: n }, (_, i) => ({ name: `doc-${String(i).padStart(3, "0")}.txt`, content: `Document ${i}: Ada Lovelace wrote the first program.` }));
  const res = await request(s.app)
    .post("/api/batches/stage")
    .send({ name: "lane", analysis: { instructions: "Summarise the document.", output_schema: schema, mode: "batch", model: "gpt-4o-mini", cache: false, ...analysis }, documents })
    .expect(201);
  const id = res.body.batch.id as string;
  await waitForStatus(s, id, "STAGED");
  return id;
}

const act = (batchId: string, action: string) => request(s.app).post(`/api/batches/${batchId}/action`).send({ action }).expect(200);
const linesOf = (batchId: string) => fake.batches.filter((b) => b.metadata.tranche_batch === batchId || b.provider === "anthropic").flatMap((b) => b.lines.map((l) => l.customId));
const tasksOf = (batchId: string) => s.db.prisma.task.findMany({ where: { batchId }, orderBy: { position: "asc" } });
const view = async (batchId: string) => (await request(s.app).get(`/api/batches/${batchId}`).expect(200)).body.batch;

function expectOnce(ids: string[]) {
  expect(new Set(ids).size).toBe(ids.length);
}

test("a run is split over provider batches within the limit, each task paid once at the batch price", async () => {
  const id = await stagedBatch(10);
  await act(id, "run");
  // The first lines checked start this process's answer-checking threads.
  await waitForStatus(s, id, "COMPLETED", 60_000);
  const mine = fake.batches.filter((b) => b.metadata.tranche_batch === id);
  expect(mine.map((b) => b.lines.length).sort()).toEqual([2, 4, 4]);
  const billed = mine.flatMap((b) => [...b.outcomes.entries()].filter(([, o]) => o.kind === "ok").map(([t]) => t));
  expect(billed).toHaveLength(10);
  expectOnce(billed);
  const price = priceFor("gpt-4o-mini", loadPriceTable(), { lane: "batch" }).price;
  for (const t of await tasksOf(id)) {
    expect(t.status).toBe("succeeded");
    expect(t.output).toHaveProperty("summary");
    expect(t.requests).toBe(1);
    expect(t.costUsd).toBeCloseTo(costOf({ inputTokens: t.inputTokens!, cachedInputTokens: 0, outputTokens: t.outputTokens! }, price)!, 12);
  }
  // Lines are reported before their provider batch is recorded as ended: the batch may complete a moment earlier.
  const batch = await waitFor("every provider batch recorded as ended", async () => {
    const b = await view(id);
    return b.provider_batches.every((pb: { status: string }) => pb.status === "ended") ? b : undefined;
  });
  expect(batch.provider_batches).toHaveLength(3);
  for (const pb of batch.provider_batches) {
    expect(pb).toMatchObject({ provider: "openai", status: "ended", provider_status: "completed" });
    expect(pb.request_counts.succeeded).toBe(pb.tasks);
  }
});

test("pause cancels the open provider batch and keeps what it finished; resume sends only the rest", async () => {
  fake.setBehaviour({ processMs: Infinity, cancelMs: 0 });
  const id = await stagedBatch(4);
  await act(id, "run");
  const pb = await waitFor("a provider batch", async () => fake.batches.find((b) => b.metadata.tranche_batch === id && b.phase === "in_progress"));
  await waitFor("the provider id recorded", async () => (await s.db.prisma.providerBatch.findFirst({ where: { batchId: id, providerId: pb.id } })) ?? undefined);
  // Two lines answered before the pause.
  for (const line of pb.lines.slice(0, 2)) pb.outcomes.set(line.customId, { kind: "ok", text: '{"summary":"early"}', prompt: 10, completion: 5 });
  await act(id, "pause");
  await waitFor("the provider batch cancelled", async () => pb.phase === "ended");
  await waitFor("the finished lines counted and the rest handed back", async () => {
    const b = await s.db.prisma.batch.findUnique({ where: { id } });
    return b && b.status === "PAUSED" && b.succeeded === 2 && b.pending === 2 && b.running === 0;
  });
  expect(pb.endedAs).toBe("cancelled");
  fake.setBehaviour({ processMs: 100 });
  await act(id, "resume");
  await waitForStatus(s, id, "COMPLETED");
  const mine = fake.batches.filter((b) => b.metadata.tranche_batch === id);
  expect(mine).toHaveLength(2);
  expect(mine[1]!.lines.map((l) => l.customId).sort()).toEqual(pb.lines.slice(2).map((l) => l.customId).sort());
  const billed = mine.flatMap((b) => [...b.outcomes.entries()].filter(([, o]) => o.kind === "ok").map(([t]) => t));
  expect(billed).toHaveLength(4);
  expectOnce(billed);
});

test("cancel keeps finished results and cancels the rest", async () => {
  fake.setBehaviour({ processMs: Infinity, cancelMs: 0 });
  const id = await stagedBatch(3);
  await act(id, "run");
  const pb = await waitFor("a provider batch", async () => fake.batches.find((b) => b.metadata.tranche_batch === id && b.phase === "in_progress"));
  await waitFor("the provider id recorded", async () => (await s.db.prisma.providerBatch.findFirst({ where: { batchId: id, providerId: pb.id } })) ?? undefined);
  pb.outcomes.set(pb.lines[0]!.customId, { kind: "ok", text: '{"summary":"kept"}', prompt: 10, completion: 5 });
  await act(id, "cancel");
  await waitFor("the batch settled", async () => {
    const b = await s.db.prisma.batch.findUnique({ where: { id } });
    return b && b.status === "CANCELLED" && b.succeeded === 1 && b.cancelled === 2 && b.running === 0;
  });
  const kept = (await tasksOf(id)).find((t) => t.status === "succeeded");
  expect(kept?.output).toEqual({ summary: "kept" });
});

test("expired lines are sent again in a new provider batch; with on_expiry fail they fail", async () => {
  fake.setBehaviour({ processMs: Infinity });
  const id = await stagedBatch(3);
  await act(id, "run");
  const pb = await waitFor("a provider batch", async () => fake.batches.find((b) => b.metadata.tranche_batch === id && b.phase === "in_progress"));
  await waitFor("the provider id recorded", async () => (await s.db.prisma.providerBatch.findFirst({ where: { batchId: id, providerId: pb.id } })) ?? undefined);
  pb.outcomes.set(pb.lines[0]!.customId, { kind: "ok", text: '{"summary":"in time"}', prompt: 10, completion: 5 });
  fake.setBehaviour({ processMs: 50 });
  fake.expire(pb.id);
  await waitForStatus(s, id, "COMPLETED");
  const mine = fake.batches.filter((b) => b.metadata.tranche_batch === id);
  expect(mine).toHaveLength(2);
  expect(mine[1]!.lines.map((l) => l.customId).sort()).toEqual(pb.lines.slice(1).map((l) => l.customId).sort());

  fake.setBehaviour({ processMs: Infinity });
  const strict = await stagedBatch(2, { on_expiry: "fail", failure_tolerance: 1 });
  await act(strict, "run");
  const spb = await waitFor("a provider batch", async () => fake.batches.find((b) => b.metadata.tranche_batch === strict && b.phase === "in_progress"));
  await waitFor("the provider id recorded", async () => (await s.db.prisma.providerBatch.findFirst({ where: { batchId: strict, providerId: spb.id } })) ?? undefined);
  fake.expire(spb.id);
  await waitForStatus(s, strict, "COMPLETED");
  const failed = await tasksOf(strict);
  expect(failed.map((t) => t.status)).toEqual(["failed", "failed"]);
  expect(failed[0]!.error).toMatch(/on_expiry: fail/);
  expect(fake.batches.filter((b) => b.metadata.tranche_batch === strict)).toHaveLength(1);
});

test("with on_expiry live, expired lines go through the live lane instead", async () => {
  fake.setBehaviour({ processMs: Infinity });
  const id = await stagedBatch(3, { on_expiry: "live" });
  await act(id, "run");
  const pb = await waitFor("a provider batch", async () => fake.batches.find((b) => b.metadata.tranche_batch === id && b.phase === "in_progress"));
  await waitFor("the provider id recorded", async () => (await s.db.prisma.providerBatch.findFirst({ where: { batchId: id, providerId: pb.id } })) ?? undefined);
  pb.outcomes.set(pb.lines[0]!.customId, { kind: "ok", text: '{"summary":"in time"}', prompt: 10, completion: 5 });
  const liveBefore = fake.live.length;
  fake.expire(pb.id);
  await waitForStatus(s, id, "COMPLETED");
  expect(fake.batches.filter((b) => b.metadata.tranche_batch === id)).toHaveLength(1);
  const liveNames = fake.live.slice(liveBefore).map((b) => JSON.stringify(b.messages).match(/doc-\d+\.txt/)?.[0]);
  expect(liveNames.sort()).toEqual(["doc-001.txt", "doc-002.txt"]);
  const tasks = await tasksOf(id);
  expect(tasks.map((t) => t.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
  // The live calls are priced at the live rate.
  const live = priceFor("gpt-4o-mini", loadPriceTable()).price;
  expect(tasks[1]!.costUsd).toBeCloseTo(costOf({ inputTokens: tasks[1]!.inputTokens!, cachedInputTokens: tasks[1]!.cachedInputTokens ?? 0, outputTokens: tasks[1]!.outputTokens! }, live)!, 12);
});

test("a submission whose answer was lost is found at the provider, not paid twice; lines read twice count once", async () => {
  fake.setBehaviour({ processMs: 100, failCreateOnce: true, repeatResults: 2 });
  const id = await stagedBatch(3);
  await act(id, "run");
  await waitForStatus(s, id, "COMPLETED");
  const mine = fake.batches.filter((b) => b.metadata.tranche_batch === id);
  expect(mine).toHaveLength(1);
  const b = await s.db.prisma.batch.findUnique({ where: { id } });
  expect(b).toMatchObject({ succeeded: 3, failed: 0, total: 3 });
  expect((await view(id)).provider_batches).toHaveLength(1);
});

test("retry-failed sends only the failed tasks", async () => {
  let refuse = true;
  fake.setBehaviour({
    processMs: 50,
    answer: (line) => (refuse && line.customId.endsWith(firstDoc) ? { kind: "error", status: 400, message: "refused line" } : { kind: "ok", text: '{"summary":"fine"}' }),
  });
  const id = await stagedBatch(3, { failure_tolerance: 1 });
  const first = await s.db.prisma.document.findFirst({ where: { batchId: id }, orderBy: { position: "asc" } });
  firstDoc = first!.id;
  await act(id, "run");
  await waitForStatus(s, id, "COMPLETED");
  expect((await tasksOf(id)).filter((t) => t.status === "failed")).toHaveLength(1);
  refuse = false;
  await act(id, "retry-failed");
  await waitForStatus(s, id, "COMPLETED");
  const mine = fake.batches.filter((b) => b.metadata.tranche_batch === id);
  expect(mine).toHaveLength(2);
  expect(mine[1]!.lines).toHaveLength(1);
  expect(mine[1]!.lines[0]!.customId).toContain(firstDoc);
});
let firstDoc = "";

test("the Anthropic lane: message batches through the official SDK", async () => {
  const before = fake.batches.filter((b) => b.provider === "anthropic").length;
  const id = await stagedBatch(3, { provider: "anthropic", model: "claude-3-5-haiku-latest" });
  await act(id, "run");
  await waitForStatus(s, id, "COMPLETED");
  const mine = fake.batches.filter((b) => b.provider === "anthropic").slice(before);
  expect(mine).toHaveLength(1);
  expect(mine[0]!.lines).toHaveLength(3);
  const tasks = await tasksOf(id);
  expect(tasks.every((t) => t.status === "succeeded" && t.requests === 1)).toBe(true);
  expect(linesOf(id).length).toBeGreaterThanOrEqual(3);
  const ended = await waitFor("the provider batch recorded as ended", async () => {
    const pb = (await view(id)).provider_batches[0];
    return pb?.status === "ended" ? pb : undefined;
  });
  expect(ended).toMatchObject({ provider: "anthropic", provider_status: "ended" });
});

test("polling survives losing Redis: the reconciler brings back the poller from what PostgreSQL holds", async () => {
  fake.setBehaviour({ processMs: Infinity });
  const id = await stagedBatch(3);
  await act(id, "run");
  const pb = await waitFor("a provider batch", async () => fake.batches.find((b) => b.metadata.tranche_batch === id && b.phase === "in_progress"));
  await waitFor("the provider id recorded", async () => (await s.db.prisma.providerBatch.findFirst({ where: { batchId: id, providerId: pb.id } })) ?? undefined);
  await s.background.queues.lane.obliterate({ force: true });
  fake.finish(pb.id);
  await waitForStatus(s, id, "COMPLETED");
  expect(fake.batches.filter((b) => b.metadata.tranche_batch === id)).toHaveLength(1);
  const billed = [...pb.outcomes.values()].filter((o) => o.kind === "ok");
  expect(billed).toHaveLength(3);
});

test("the budget holds in the batch lane: estimate and reservations at batch prices, a pause by the budget, then resume", async () => {
  fake.setBehaviour({ processMs: 50 });
  const id = await stagedBatch(8, { max_tokens: 60 });
  const staged = await view(id);
  const live = priceFor("gpt-4o-mini", loadPriceTable()).price!;
  const batchPrice = priceFor("gpt-4o-mini", loadPriceTable(), { lane: "batch" }).price!;
  expect(batchPrice.input_per_mtok).toBeLessThan(live.input_per_mtok);
  expect(staged.estimate).toMatchObject({ documents: 8, requests: 8 });
  expect(staged.estimate.price).toMatchObject({ input_per_mtok: batchPrice.input_per_mtok, output_per_mtok: batchPrice.output_per_mtok });
  const budget = staged.estimate.cost_usd_max / 2;
  await request(s.app).post(`/api/batches/${id}/budget`).send({ budget_usd: budget }).expect(200);
  await act(id, "run");
  const paused = await waitFor("the budget's pause", async () => {
    const b = await s.db.prisma.batch.findUnique({ where: { id } });
    return b && b.status === "PAUSED" && b.running === 0 ? b : undefined;
  });
  expect(paused.pauseReason).toBe("budget");
  const sent = () => fake.batches.filter((b) => b.metadata.tranche_batch === id).flatMap((b) => b.lines.map((l) => l.customId));
  expect(sent().length).toBeGreaterThan(0);
  expect(sent().length).toBeLessThan(8);
  const spent = (await view(id)).usage.cost_usd;
  expect(spent).toBeLessThanOrEqual(budget + 1e-12);
  await request(s.app).post(`/api/batches/${id}/budget`).send({ budget_usd: budget * 4 }).expect(200);
  await act(id, "resume");
  await waitForStatus(s, id, "COMPLETED");
  expect(sent()).toHaveLength(8);
  expectOnce(sent());
  const done = await view(id);
  const tasks = await tasksOf(id);
  expect(done.usage.cost_usd).toBeCloseTo(tasks.reduce((sum, t) => sum + (t.costUsd ?? 0), 0), 12);
});

test("bad credentials fail the batch once", async () => {
  const id = await stagedBatch(3);
  fake.setBehaviour({ unauthorized: true });
  const calls = fake.calls.length;
  await act(id, "run");
  const failed = await waitForStatus(s, id, "FAILED");
  expect(failed.lastError).toMatch(/401|authentication|api key/i);
  const creates = fake.calls.slice(calls).filter((c) => c.method === "POST");
  expect(creates.length).toBeLessThanOrEqual(2);
});
