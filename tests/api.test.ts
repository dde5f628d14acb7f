// The REST API of SPEC §3–4: every route's accepted and refused paths, the response shapes, and 400/404/409/412/413 answers that say what was wrong.
import request from "supertest";
import { createHarness, type Harness } from "./support/harness";
import { finishTasks, stageAll } from "./support/drive";
import { checkAnswers } from "./support/openapi-check";

let h: Harness;
let checked: ReturnType<typeof checkAnswers>;
beforeAll(async () => {
  h = await createHarness({ maxRunningBatches: 1, bodyLimit: "64kb" });
  checked = checkAnswers(h.app);
});
afterAll(() => h.close());
// Every answer below is also checked against the OpenAPI document.
afterEach(() => {
  const problems = checked.problems.splice(0);
  expect(problems).toEqual([]);
});

const api = () => request(checked.app);
const driver = () => ({ service: h.engine.service, prisma: h.db.prisma });
const body = (name = "Q3 contracts", documents = 2) => ({
  name,
  analysis: {
    instructions: "List the parties and the termination clause.",
    output_schema: { type: "object", properties: { parties: { type: "array" } } },
    model: "gpt-4o-mini",
  },
  documents: [
    { name: "a.txt", content: "plain text", mime_type: "text/plain" },
    { name: "b.md", content_base64: Buffer.from("# Title\n\nBody").toString("base64") },
  ].slice(0, documents),
});

async function created(name?: string) {
  const res = await api().post("/api/batches/save").send(body(name)).expect(201);
  return res.body.batch as { id: string; version: number };
}

describe("creating batches", () => {
  test("save answers 201 with the batch as SPEC §4 shows it", async () => {
    const res = await api().post("/api/batches/save").send(body()).expect(201);
    expect(res.body.success).toBe(true);
    expect(res.body.batch).toMatchObject({
      name: "Q3 contracts",
      status: "SAVED",
      substate: null,
      queue_position: null,
      version: 1,
      run_id: 0,
      allowed_actions: ["stage", "reset", "restage", "delete"],
      progress: { total: 0, pending: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 },
      last_error: null,
      document_count: 2,
    });
    expect(Date.parse(res.body.batch.created_at)).not.toBeNaN();
    const docs = await api().get(`/api/batches/${res.body.batch.id}/documents`).expect(200);
    expect(docs.body.documents.map((d: { name: string; mime_type: string }) => [d.name, d.mime_type])).toEqual([
      ["a.txt", "text/plain"],
      ["b.md", "text/markdown"],
    ]);
  });

  test("stage creates and stages at once", async () => {
    const res = await api().post("/api/batches/stage").send(body()).expect(201);
    expect(res.body.batch).toMatchObject({ status: "STAGING", run_id: 1, version: 2, allowed_actions: ["cancel"] });
    const effects = await h.db.prisma.effect.findMany({ where: { batchId: res.body.batch.id } });
    expect(effects.map((e) => e.type)).toEqual(["enqueueStaging"]);
  });

  test("multipart upload is accepted", async () => {
    const res = await api()
      .post("/api/batches/save")
      .field("name", "uploaded")
      .field("analysis", JSON.stringify({ instructions: "Summarise" }))
      .attach("files", Buffer.from("hello"), "hello.txt")
      .attach("files", Buffer.from("<p>hi</p>"), "page.html")
      .expect(201);
    expect(res.body.batch.document_count).toBe(2);
  });

  test.each([
    [{ ...body(), name: "" }, /body\.name/],
    [{ ...body(), analysis: {} }, /body\.analysis\.instructions/],
    [{ ...body(), analysis: { instructions: "x", output_schema: { type: 12 } } }, /output_schema: is not a valid JSON Schema/],
    [{ ...body(), documents: [{ name: "a.txt" }] }, /give exactly one of content or content_base64/],
    [{ ...body(), documents: [{ name: "a.weird", content: "x" }] }, /cannot tell the type of "a.weird"/],
    [{ ...body(), analysis: { instructions: "x", failure_tolerance: 2 } }, /failure_tolerance/],
  ])("bad input answers 400 naming the problem (%#)", async (payload, message) => {
    const before = await h.db.prisma.batch.count();
    const res = await api().post("/api/batches/save").send(payload).expect(400);
    expect(res.body).toMatchObject({ success: false, code: "validation_failed" });
    expect(res.body.error).toMatch(message);
    expect(await h.db.prisma.batch.count()).toBe(before);
  });

  test("stage without documents is a 400, and nothing is created", async () => {
    const before = await h.db.prisma.batch.count();
    const res = await api().post("/api/batches/stage").send({ ...body(), documents: [] }).expect(400);
    expect(res.body.error).toMatch(/at least one document/);
    expect(await h.db.prisma.batch.count()).toBe(before);
  });

  test("malformed JSON is a 400 and an oversize body a 413", async () => {
    const bad = await api().post("/api/batches/save").set("content-type", "application/json").send("{nope").expect(400);
    expect(bad.body.code).toBe("malformed_json");
    const huge = await api().post("/api/batches/save").send({ ...body(), documents: [{ name: "big.txt", content: "x".repeat(100_000) }] }).expect(413);
    expect(huge.body).toMatchObject({ success: false, code: "payload_too_large" });
  });
});

describe("actions", () => {
  test("the unified action route and the per-action routes drive a batch through its life", async () => {
    const { id } = await created();
    const staged = await api().post(`/api/batches/${id}/action`).send({ action: "stage", context: { reason: "go" } }).expect(200);
    expect(staged.body).toMatchObject({ success: true, previous_state: "SAVED", current_state: "STAGING", version: 2, allowed_actions: ["cancel"] });
    expect(staged.body.batch.id).toBe(id);
    await stageAll(driver(), id);

    const ran = await api().post(`/api/batches/${id}/run`).expect(200);
    expect(ran.body).toMatchObject({ previous_state: "STAGED", current_state: "ANALYZING" });
    expect(ran.body.batch).toMatchObject({ substate: "running", queue_position: 0 });

    const paused = await api().post(`/api/batches/${id}/pause`).send({ reason: "lunch" }).expect(200);
    expect(paused.body).toMatchObject({ current_state: "PAUSED", allowed_actions: ["resume", "cancel"] });
    await api().post(`/api/batches/${id}/resume`).expect(200);
    await finishTasks(driver(), id);
    const done = await api().get(`/api/batches/${id}`).expect(200);
    expect(done.body.batch).toMatchObject({ status: "COMPLETED", progress: { total: 2, succeeded: 2, pending: 0, running: 0 } });

    await api().post(`/api/batches/${id}/reprocess-staging`).expect(200);
    await api().post(`/api/batches/${id}/cancel`).expect(200);
    const reset = await api().post(`/api/batches/${id}/reset-to-prestage`).expect(200);
    expect(reset.body).toMatchObject({ current_state: "SAVED" });
    expect(await h.db.prisma.task.count({ where: { batchId: id } })).toBe(0);

    const history = await api().get(`/api/batches/${id}/history`).expect(200);
    const types = history.body.history.map((e: { event_type: string }) => e.event_type);
    expect(types.slice(0, 2)).toEqual(["created", "stage"]);
    expect(history.body.history[1]).toMatchObject({ outcome: "accepted", source: "user", from: "SAVED", to: "STAGING", reason: "go", version: 2 });
    expect(history.body.history.find((e: { event_type: string }) => e.event_type === "pause").reason).toBe("lunch");
  });

  test("a refused action answers 409 as SPEC §3 shows, and is recorded", async () => {
    const { id } = await created();
    const res = await api().post(`/api/batches/${id}/action`).send({ action: "run" }).expect(409);
    expect(res.body).toEqual({
      success: false,
      code: "transition_refused",
      error: "Cannot run batch in SAVED state",
      current_state: "SAVED",
      allowed_actions: ["stage", "reset", "restage", "delete"],
      version: 1,
    });
    const history = await api().get(`/api/batches/${id}/history`).expect(200);
    expect(history.body.history.at(-1)).toMatchObject({ outcome: "refused", event_type: "run", version: 1 });
  });

  test("If-Match and expected_version: a stale version answers 412 and changes nothing", async () => {
    const { id } = await created();
    const stale = await api().post(`/api/batches/${id}/stage`).set("If-Match", "7").expect(412);
    expect(stale.body).toMatchObject({ success: false, code: "version_conflict", current_state: "SAVED", version: 1, allowed_actions: ["stage", "reset", "restage", "delete"] });
    await api().post(`/api/batches/${id}/action`).send({ action: "stage", expected_version: 3 }).expect(412);
    await api().post(`/api/batches/${id}/stage`).set("If-Match", '"1"').expect(200);
    await api().post(`/api/batches/${id}/stage`).set("If-Match", "nonsense").expect(400);
    expect((await api().get(`/api/batches/${id}`)).body.batch.version).toBe(2);
  });

  test.each([
    [{ action: "explode" }, /body\.action/],
    [{}, /body\.action/],
    [{ action: "resume", context: { position: 0 } }, /body\.context\.position/],
  ])("a malformed action body answers 400 (%#)", async (payload, message) => {
    const { id } = await created();
    const res = await api().post(`/api/batches/${id}/action`).send(payload).expect(400);
    expect(res.body.error).toMatch(message);
  });

  test("an unknown batch answers 404, for a well-formed and a malformed id", async () => {
    await api().get("/api/batches/7b0c3c1e-0d7c-4a53-9f0b-5d6a4f1e2a3b").expect(404);
    const res = await api().post("/api/batches/not-a-uuid/action").send({ action: "stage" }).expect(404);
    expect(res.body).toMatchObject({ success: false, code: "not_found" });
    await api().get("/api/nothing-here").expect(404);
  });
});

describe("documents, listing, deleting and the queue", () => {
  test("documents can be added and removed while SAVED, and not after", async () => {
    const { id } = await created();
    const added = await api().post(`/api/batches/${id}/documents`).send({ documents: [{ name: "c.txt", content: "more" }] }).expect(201);
    expect(added.body.document_ids).toHaveLength(1);
    expect(added.body.batch).toMatchObject({ document_count: 3, version: 2 });
    await api().delete(`/api/batches/${id}/documents/${added.body.document_ids[0]}`).expect(200);
    await api().delete(`/api/batches/${id}/documents/7b0c3c1e-0d7c-4a53-9f0b-5d6a4f1e2a3b`).expect(404);
    await api().post(`/api/batches/${id}/stage`).expect(200);
    const refused = await api().post(`/api/batches/${id}/documents`).send({ documents: [{ name: "d.txt", content: "late" }] }).expect(409);
    expect(refused.body.current_state).toBe("STAGING");
    expect((await api().get(`/api/batches/${id}/documents`)).body.documents).toHaveLength(2);
  });

  test("list filters by state and paginates", async () => {
    const a = await created("list-a");
    await created("list-b");
    await api().post(`/api/batches/${a.id}/stage`).expect(200);
    const staging = await api().get("/api/batches?status=STAGING&limit=100").expect(200);
    expect(staging.body.batches.every((b: { status: string }) => b.status === "STAGING")).toBe(true);
    expect(staging.body.batches.map((b: { id: string }) => b.id)).toContain(a.id);
    const page = await api().get("/api/batches?limit=1&offset=1").expect(200);
    expect(page.body).toMatchObject({ limit: 1, offset: 1 });
    expect(page.body.batches).toHaveLength(1);
    expect(page.body.total).toBeGreaterThan(1);
    const bad = await api().get("/api/batches?status=BOGUS").expect(400);
    expect(bad.body.error).toMatch(/query\.status/);
  });

  test("delete is refused while work is in flight and accepted otherwise", async () => {
    const { id } = await created();
    await api().post(`/api/batches/${id}/stage`).expect(200);
    const refused = await api().delete(`/api/batches/${id}`).expect(409);
    expect(refused.body.current_state).toBe("STAGING");
    await api().post(`/api/batches/${id}/cancel`).expect(200);
    await api().delete(`/api/batches/${id}`).expect(200);
    await api().get(`/api/batches/${id}`).expect(404);
    expect(await h.db.prisma.document.count({ where: { batchId: id } })).toBe(0);
  });

  test("the queue: one batch runs, the next waits at position 1, reorder moves waiting batches, and the next starts when a slot frees", async () => {
    const ids: string[] = [];
    for (const name of ["q1", "q2", "q3"]) {
      const { id } = await created(name);
      await api().post(`/api/batches/${id}/stage`).expect(200);
      await stageAll(driver(), id);
      await api().post(`/api/batches/${id}/run`).expect(200);
      ids.push(id);
    }
    const [q1, q2, q3] = ids as [string, string, string];
    let queue = (await api().get("/api/queue").expect(200)).body;
    expect(queue.running.map((b: { id: string }) => b.id)).toEqual([q1]);
    expect(queue.queued.map((b: { id: string; queue_position: number }) => [b.id, b.queue_position])).toEqual([[q2, 1], [q3, 2]]);

    queue = (await api().post("/api/queue/reorder").send({ batch_id: q3, position: 1 }).expect(200)).body;
    expect(queue.queued.map((b: { id: string }) => b.id)).toEqual([q3, q2]);
    await api().post("/api/queue/reorder").send({ batch_id: q1, position: 1 }).expect(409);
    await api().post("/api/queue/reorder").send({ batch_id: q1 }).expect(400);

    await api().post(`/api/batches/${q1}/cancel`).expect(200);
    queue = (await api().get("/api/queue").expect(200)).body;
    expect(queue.running.map((b: { id: string }) => b.id)).toEqual([q3]);
    expect(queue.queued.map((b: { id: string; queue_position: number }) => [b.id, b.queue_position])).toEqual([[q2, 1]]);
    const started = await h.db.prisma.historyEntry.findFirstOrThrow({ where: { batchId: q3, eventType: "START" } });
    expect(started).toMatchObject({ source: "system", outcome: "accepted", fromState: "ANALYZING.queued", toState: "ANALYZING.running" });

    // A batch paused while queued leaves the queue; resumed at position 1 it goes first.
    await api().post(`/api/batches/${q2}/pause`).expect(200);
    expect((await api().get("/api/queue")).body.queued).toHaveLength(0);
    await api().post(`/api/batches/${q2}/resume`).send({ position: 1 }).expect(200);
    expect((await api().get(`/api/batches/${q2}`)).body.batch).toMatchObject({ substate: "queued", queue_position: 1 });
    await finishTasks(driver(), q3);
    expect((await api().get(`/api/batches/${q2}`)).body.batch).toMatchObject({ substate: "running", queue_position: 0 });
  });
});

test("results of a batch that was staged but not analysed say so, per document", async () => {
  const res = await api().post("/api/batches/stage").send(body("staged only")).expect(201);
  const id = res.body.batch.id as string;
  const [first] = await h.db.prisma.document.findMany({ where: { batchId: id }, orderBy: { position: "asc" } });
  await h.engine.service.handleDocumentStageFailure({ type: "DOCUMENT_STAGE_FAILED", batchId: id, runId: 1, documentId: first!.id, error: "a.txt: corrupt" });
  const before = (await api().get(`/api/batches/${id}/results`).expect(200)).body.results;
  expect(before.map((r: { status: string }) => r.status)).toEqual(["stage_failed", "staging"]);
  const other = await api().post("/api/batches/stage").send(body("fully staged")).expect(201);
  await stageAll(driver(), other.body.batch.id);
  const staged = (await api().get(`/api/batches/${other.body.batch.id}/results`).expect(200)).body.results;
  expect(staged.map((r: { status: string }) => r.status)).toEqual(["staged", "staged"]);
  const saved = await created("never staged");
  const none = (await api().get(`/api/batches/${saved.id}/results`).expect(200)).body.results;
  expect(none.map((r: { status: string }) => r.status)).toEqual(["not_staged", "not_staged"]);
});
