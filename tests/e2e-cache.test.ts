// The result cache end to end (real PostgreSQL, Redis, workers and the fake provider over HTTP): a rerun of an unchanged batch makes no provider request and no queue job and saves what the first run cost; a changed document, changed instructions, `cache: false` and another tenant each reach the provider; a hit outlives a reset or deletion of the batch that paid for it; results show `cached`.
import request from "supertest";
import { analysisSchema } from "../src/server/http-schemas";
import { act, documentOf } from "./support/e2e";
import { expectBatchInvariants } from "./support/invariants";
import { createSystem, waitFor, waitForStatus, type TestSystem } from "./support/system";

let s: TestSystem;
beforeAll(async () => {
  s = await createSystem();
});
afterAll(() => s.close());

type Doc = { name: string; content: string };

/** `n` documents whose texts differ by `tag`, so that each test has documents of its own. */
const docsFor = (tag: string, n = 6): Doc[] =>
  Array.from({ length: n }, (_, i) => ({ name: `doc-${String(i).padStart(3, "0")}.txt`, content: `${tag} document ${i}. Ada Lovelace met Charles Babbage in London.` }));

const analysisFor = (tag: string, extra: Record<string, unknown> = {}) => ({ instructions: `Summarise the document (${tag}).`, model: "gpt-4o-mini", ...extra });

async function doAct(id: string, action: string) {
  const res = await act(s, id, action);
  expect([action, res.status]).toEqual([action, 200]);
}

async function stageBatch(analysis: Record<string, unknown>, documents: Doc[]): Promise<string> {
  const res = await request(s.app).post("/api/batches/stage").send({ name: "cache", analysis, documents }).expect(201);
  const id = res.body.batch.id as string;
  await waitForStatus(s, id, "STAGED");
  return id;
}

/** Runs a staged batch to COMPLETED; returns the provider requests it made. */
async function runBatch(id: string) {
  const before = s.fake.requests.length;
  await doAct(id, "run");
  await waitForStatus(s, id, "COMPLETED");
  return s.fake.requests.slice(before);
}

const tasksOf = (batchId: string, runId?: number) =>
  s.db.prisma.task.findMany({ where: { batchId, ...(runId !== undefined && { runId }) }, include: { document: { select: { name: true } } }, orderBy: { position: "asc" } });

const cacheRows = () => s.db.prisma.cachedResult.count();

/** The analysis jobs the store handed the outbox for a run of a batch. */
async function analysisJobs(batchId: string, runId: number): Promise<number> {
  const effects = await s.db.prisma.effect.findMany({ where: { batchId } });
  let n = 0;
  for (const e of effects) {
    const items = (e.payload as { items: { type: string; runId: number; units: unknown[] }[] }).items;
    for (const item of items) if (item.type === "enqueueAnalysis" && item.runId === runId) n += item.units.length;
  }
  return n;
}

test("a rerun of an unchanged batch makes no provider request and no queue job, and saves what the first run cost", async () => {
  const docs = docsFor("rerun");
  const id = await stageBatch(analysisFor("rerun"), docs);
  const first = await runBatch(id);
  expect(first).toHaveLength(docs.length);
  const paid = await tasksOf(id, 1);
  const firstCost = paid.reduce((sum, t) => sum + t.costUsd!, 0);
  expect(firstCost).toBeGreaterThan(0);
  expect(paid.every((t) => !t.cached)).toBe(true);

  const before = s.fake.requests.length;
  await doAct(id, "rerun");
  const b = await waitFor("the rerun to complete", async () => {
    const row = await s.db.prisma.batch.findUniqueOrThrow({ where: { id } });
    return row.runId === 2 && row.status === "COMPLETED" ? row : undefined;
  });
  expect(s.fake.requests.length - before).toBe(0);
  expect(await analysisJobs(id, 2)).toBe(0);
  expect(b).toMatchObject({ total: docs.length, succeeded: docs.length, failed: 0, pending: 0, running: 0 });
  expect(b.savedUsd).toBeCloseTo(firstCost, 12);

  const rerun = await tasksOf(id, 2);
  expect(rerun).toHaveLength(docs.length);
  for (const [i, t] of rerun.entries()) {
    expect(t).toMatchObject({ status: "succeeded", cached: true, costUsd: 0, requests: 0, attempts: 0, strategy: "single" });
    expect(t.output).toEqual(paid[i]!.output);
    expect(t.savedUsd).toBeCloseTo(paid[i]!.costUsd!, 12);
  }
  const hits = await s.db.prisma.historyEntry.findMany({ where: { batchId: id, eventType: "TASK_COMPLETED", source: "system", outcome: "accepted" } });
  expect(hits).toHaveLength(docs.length);
  await expectBatchInvariants(s.db.prisma, id);

  const json = await request(s.app).get(`/api/batches/${id}/results?format=json`).expect(200);
  const records = JSON.parse(json.text).results as { cached: boolean; output: unknown }[];
  expect(records.map((r) => r.cached)).toEqual(docs.map(() => true));
  const jsonl = await request(s.app).get(`/api/batches/${id}/results?format=jsonl`).expect(200);
  expect(jsonl.text.trim().split("\n").map((l) => JSON.parse(l).cached)).toEqual(docs.map(() => true));
  const csv = (await request(s.app).get(`/api/batches/${id}/results?format=csv`).expect(200)).text.trim().split("\n");
  const column = csv[0]!.split(",").indexOf("cached");
  expect(column).toBeGreaterThan(0);
  expect(csv.slice(1).map((line) => line.split(",").at(column - csv[0]!.split(",").length))).toEqual(docs.map(() => "true"));
});

test("after one document changes, only that one reaches the provider; the same text under another name is another document", async () => {
  const docs = docsFor("change");
  await runBatch(await stageBatch(analysisFor("change"), docs));

  const changed = docs.map((d, i) => (i === 2 ? { ...d, content: `${d.content} A new closing sentence.` } : d));
  changed.push({ name: "renamed.txt", content: docs[0]!.content });
  const id = await stageBatch(analysisFor("change"), changed);
  // The estimate leaves out what the cache will answer.
  const staged = (await request(s.app).get(`/api/batches/${id}`).expect(200)).body.batch;
  expect(staged.estimate).toMatchObject({ cached_documents: docs.length - 1 });
  const sent = await runBatch(id);
  expect(sent.map((r) => documentOf(r.body)).sort()).toEqual(["doc-002.txt", "renamed.txt"]);
  const tasks = await tasksOf(id);
  expect(tasks.filter((t) => !t.cached).map((t) => t.document.name).sort()).toEqual(["doc-002.txt", "renamed.txt"]);
  expect(tasks.every((t) => t.status === "succeeded")).toBe(true);
  await expectBatchInvariants(s.db.prisma, id);
});

test("changed instructions, another model or output schema, and `cache: false` all miss the cache", async () => {
  const docs = docsFor("miss", 3);
  await runBatch(await stageBatch(analysisFor("miss"), docs));
  const variants: Record<string, unknown>[] = [
    analysisFor("miss, differently"),
    analysisFor("miss", { model: "gpt-4o" }),
    analysisFor("miss", { temperature: 0.5 }),
    analysisFor("miss", { output_schema: { type: "object" } }),
    analysisFor("miss", { cache: false }),
  ];
  for (const analysis of variants) {
    const id = await stageBatch(analysis, docs);
    const rows = await cacheRows();
    expect([analysis, (await runBatch(id)).length]).toEqual([analysis, docs.length]);
    const tasks = await tasksOf(id);
    expect(tasks.every((t) => t.status === "succeeded" && !t.cached)).toBe(true);
    // A batch that keeps out of the cache does not feed it either.
    if (analysis.cache === false) expect(await cacheRows()).toBe(rows);
  }
});

test("another tenant's identical batch does not take this tenant's answers", async () => {
  const docs = docsFor("tenant", 3);
  const analysis = analysisFor("tenant");
  await runBatch(await stageBatch(analysis, docs));

  // As the API creates a batch for a key of tenant `other`.
  const id = await s.engine.service.createBatch({
    name: "other tenant",
    analysis: analysisSchema.parse(analysis),
    priority: 0,
    window: 4,
    stagingTolerance: 0,
    failureTolerance: 0,
    documents: docs.map((d) => ({ name: d.name, mimeType: "text/plain", content: Buffer.from(d.content) })),
    tenant: "other",
  });
  await s.engine.service.requestStateChange(id, "stage", {});
  await waitForStatus(s, id, "STAGED");
  expect(await runBatch(id)).toHaveLength(docs.length);
  expect((await tasksOf(id)).every((t) => !t.cached)).toBe(true);

  // Its own rerun, though, hits its own entries.
  const again = await s.engine.service.createBatch({
    name: "other tenant, again",
    analysis: analysisSchema.parse(analysis),
    priority: 0,
    window: 4,
    stagingTolerance: 0,
    failureTolerance: 0,
    documents: docs.map((d) => ({ name: d.name, mimeType: "text/plain", content: Buffer.from(d.content) })),
    tenant: "other",
  });
  await s.engine.service.requestStateChange(again, "stage", {});
  await waitForStatus(s, again, "STAGED");
  expect(await runBatch(again)).toHaveLength(0);
});

test("a hit outlives the reset and the deletion of the batch that paid for it", async () => {
  const docs = docsFor("survive", 3);
  const analysis = analysisFor("survive");
  const source = await stageBatch(analysis, docs);
  await runBatch(source);
  const outputs = (await tasksOf(source)).map((t) => t.output);

  await doAct(source, "reset");
  expect(await tasksOf(source)).toHaveLength(0);
  const afterReset = await stageBatch(analysis, docs);
  expect(await runBatch(afterReset)).toHaveLength(0);
  expect((await tasksOf(afterReset)).map((t) => t.output)).toEqual(outputs);

  await request(s.app).delete(`/api/batches/${source}`).expect(200);
  await request(s.app).delete(`/api/batches/${afterReset}`).expect(200);
  const afterDelete = await stageBatch(analysis, docs);
  expect(await runBatch(afterDelete)).toHaveLength(0);
  const tasks = await tasksOf(afterDelete);
  expect(tasks.map((t) => t.output)).toEqual(outputs);
  expect(tasks.every((t) => t.cached && t.status === "succeeded")).toBe(true);
  await expectBatchInvariants(s.db.prisma, afterDelete);
});

test("a rerun pauses and resumes around cached and paid tasks alike, each counted once", async () => {
  const docs = docsFor("mixed", 10);
  const analysis = analysisFor("mixed");
  await runBatch(await stageBatch(analysis, docs.slice(0, 5)));
  // Half the documents are cached; the rest are held by the provider so the batch can be paused mid-run.
  const id = await stageBatch(analysis, docs);
  const before = s.fake.requests.length;
  s.fake.pause();
  try {
    await doAct(id, "run");
    await s.fake.waitForRequests(before + 1);
    await doAct(id, "pause");
  } finally {
    s.fake.resume();
  }
  await waitForStatus(s, id, "PAUSED");
  await doAct(id, "resume");
  await waitForStatus(s, id, "COMPLETED");
  const tasks = await tasksOf(id);
  expect(tasks.filter((t) => t.cached).map((t) => t.document.name)).toEqual(docs.slice(0, 5).map((d) => d.name));
  expect(tasks.every((t) => t.status === "succeeded")).toBe(true);
  await expectBatchInvariants(s.db.prisma, id);
});
