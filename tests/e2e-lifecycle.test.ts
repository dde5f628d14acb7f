// End to end with real workers, Redis, PostgreSQL and the fake OpenAI server: a mixed set of real documents is staged, analysed and exported; cancel, rerun and retry-failed behave as SPEC §3 says.
import request from "supertest";
import { replies } from "./support/fake-llm";
import { act, documentOf, uploadBatch } from "./support/e2e";
import { createSystem, waitFor, waitForStatus, type TestSystem } from "./support/system";

let s: TestSystem;
beforeAll(async () => {
  s = await createSystem({ maxRunningBatches: 5 });
});
afterAll(() => s.close());

test("txt, md, html, pdf and docx are staged and analysed; the corrupt file is reported as such", async () => {
  const id = await uploadBatch(s, {
    files: ["notes.txt", "readme.md", "page.html", "report.pdf", "letter.docx", "broken.pdf"],
    analysis: { staging_tolerance: 0.2, output_schema: { type: "object", required: ["summary"], properties: { summary: { type: "string" } } } },
  });
  await act(s, id, "stage").then((r) => expect(r.status).toBe(200));
  const staged = await waitForStatus(s, id, "STAGED");
  expect(staged.stagingProgress).toMatchObject({ total: 6, succeeded: 5, failed: 1 });

  const docs = (await request(s.app).get(`/api/batches/${id}/documents`).expect(200)).body.documents;
  const broken = docs.find((d: { name: string }) => d.name === "broken.pdf");
  expect(broken).toMatchObject({ stage_status: "failed" });
  expect(broken.stage_error).toMatch(/broken\.pdf/);
  for (const d of docs.filter((x: { name: string }) => x.name !== "broken.pdf")) {
    expect(d).toMatchObject({ stage_status: "succeeded" });
    expect(d.chunk_count).toBeGreaterThan(0);
    expect(d.token_count).toBeGreaterThan(10);
  }

  await act(s, id, "run").then((r) => expect(r.status).toBe(200));
  const done = await waitForStatus(s, id, "COMPLETED");
  expect(done).toMatchObject({ total: 5, succeeded: 5, failed: 0, pending: 0, running: 0 });
  expect(s.fake.requests.filter((r) => r.status === 200)).toHaveLength(5);

  const json = (await request(s.app).get(`/api/batches/${id}/results?format=json`).expect(200)).body;
  expect(json.results).toHaveLength(6);
  for (const r of json.results.filter((x: { name: string }) => x.name !== "broken.pdf")) {
    expect(r).toMatchObject({ status: "succeeded", error: null, attempts: 1, run_id: 1 });
    expect(typeof r.output.summary).toBe("string");
    expect(r.input_tokens).toBeGreaterThan(0);
  }
  expect(json.results.find((x: { name: string }) => x.name === "broken.pdf")).toMatchObject({ status: "stage_failed" });

  const jsonl = (await request(s.app).get(`/api/batches/${id}/results?format=jsonl`).expect(200)).text.trim().split("\n");
  expect(jsonl.map((l) => JSON.parse(l).name)).toEqual(json.results.map((r: { name: string }) => r.name));
  const csv = (await request(s.app).get(`/api/batches/${id}/results?format=csv`).expect(200)).text.trim().split("\n");
  expect(csv[0]).toBe("document_id,name,mime_type,status,output,error,input_tokens,output_tokens,document_tokens,latency_ms,attempts,run_id,requests,cached_input_tokens,cost_usd,cached,strategy");
  expect(csv).toHaveLength(7);
});

test("staged documents keep their extracted text and its sha256", async () => {
  const id = await uploadBatch(s, { files: ["report.pdf", "letter.docx", "page.html"] });
  await act(s, id, "stage");
  await waitForStatus(s, id, "STAGED");
  const docs = await s.db.prisma.document.findMany({ where: { batchId: id }, orderBy: { position: "asc" } });
  expect(docs.map((d) => d.text?.length ?? 0).every((n) => n > 50)).toBe(true);
  expect(docs.every((d) => /^[0-9a-f]{64}$/.test(d.textSha256 ?? ""))).toBe(true);
});

test("cancel mid-run keeps finished results and drops pending tasks; rerun starts a complete new run that analyses by itself", async () => {
  s.fake.setBehaviour({ latencyMs: 150 });
  // Out of the result cache, so that the rerun asks the provider for every document again (tests/e2e-cache.test.ts has reruns that hit it).
  const id = await uploadBatch(s, { texts: 12, analysis: { cache: false } });
  await act(s, id, "stage");
  await waitForStatus(s, id, "STAGED");
  await act(s, id, "run");
  await s.fake.waitForRequests(s.fake.requests.length + 3);
  const cancelled = await act(s, id, "cancel", { reason: "wrong instructions" });
  expect(cancelled.status).toBe(200);
  const row = await waitForStatus(s, id, "CANCELLED");
  expect(row.cancelled).toBeGreaterThan(0);
  // Tasks in flight at the cancel still end (recorded, or aborted and counted cancelled/failed).
  const settled = await (async () => {
    for (;;) {
      const b = await s.db.prisma.batch.findUniqueOrThrow({ where: { id } });
      if (b.running === 0) return b;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  expect(settled.pending).toBe(0);
  expect(settled.succeeded + settled.failed + settled.cancelled).toBe(12);
  const requestsAtCancel = s.fake.requests.length;

  s.fake.setBehaviour({});
  await act(s, id, "rerun").then((r) => expect(r.status).toBe(200));
  const done = await waitForStatus(s, id, "COMPLETED");
  expect(done).toMatchObject({ runId: 2, total: 12, succeeded: 12 });
  expect(s.fake.requests.length - requestsAtCancel).toBe(12);
  expect(await s.db.prisma.task.count({ where: { batchId: id, runId: 1 } })).toBe(0);
});

test("retry-failed sends only the failed documents to the provider again", async () => {
  s.fake.setBehaviour({
    respond: (body) => (/doc-00[12]\.txt/.test(documentOf(body)) ? replies.serverError(400) : replies.default(body)),
  });
  // Out of the result cache, so that what reaches the provider depends only on what failed.
  const id = await uploadBatch(s, { texts: 6, analysis: { failure_tolerance: 0.5, cache: false } });
  await act(s, id, "stage");
  await waitForStatus(s, id, "STAGED");
  await act(s, id, "run");
  const first = await waitForStatus(s, id, "COMPLETED");
  expect(first).toMatchObject({ succeeded: 4, failed: 2 });

  s.fake.setBehaviour({});
  const before = s.fake.requests.length;
  await act(s, id, "retry-failed").then((r) => expect(r.status).toBe(200));
  const second = await waitForStatus(s, id, "COMPLETED");
  expect(second).toMatchObject({ runId: 2, total: 2, succeeded: 2 });
  const retried = s.fake.requests.slice(before).map((r) => documentOf(r.body)).sort();
  expect(retried).toEqual(["doc-001.txt", "doc-002.txt"]);
  const results = (await request(s.app).get(`/api/batches/${id}/results`).expect(200)).body.results;
  expect(results.map((r: { status: string }) => r.status)).toEqual(Array(6).fill("succeeded"));
});

test("cancel aborts the provider calls in flight, and the aborted tasks count as cancelled", async () => {
  s.fake.setBehaviour({ latencyMs: 20_000 });
  // Answered by an earlier test, these documents would come from the result cache without a call to abort.
  const id = await uploadBatch(s, { texts: 6, analysis: { cache: false } });
  await act(s, id, "stage");
  await waitForStatus(s, id, "STAGED");
  const before = s.fake.requests.length;
  await act(s, id, "run");
  await s.fake.waitForRequests(before + 3);
  const cancelledAt = Date.now();
  await act(s, id, "cancel");
  const settled = await waitFor("the aborted tasks to be handed back", async () => {
    const b = await s.db.prisma.batch.findUniqueOrThrow({ where: { id } });
    return b.running === 0 ? b : undefined;
  }, 10_000);
  // Before the system's 5 s request timeout could end them, let alone the provider's 20 s
  // answer: the calls were aborted, not waited out.
  expect(Date.now() - cancelledAt).toBeLessThan(4_000);
  expect(settled).toMatchObject({ status: "CANCELLED", total: 6, succeeded: 0, failed: 0, cancelled: 6 });
  expect(s.fake.requests.slice(before).every((r) => r.status === 0)).toBe(true);
  s.fake.setBehaviour({});
});
