// Input a client can send that used to answer 500 or change state it should not: each is a clear 4xx with a code and an error naming the field, and nothing is written. Also the request id, the Host and Origin checks and the output_schema checks at creation.
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import request from "supertest";
import { batchIn } from "./support/drive";
import { createHarness, type Harness } from "./support/harness";

let h: Harness;
beforeAll(async () => {
  h = await createHarness({ maxRunningBatches: 1, bodyLimit: "1mb" });
});
afterAll(() => h.close());

const api = () => request(h.app);
const driver = () => ({ service: h.engine.service, prisma: h.db.prisma });
const valid = (over: Record<string, unknown> = {}, analysis: Record<string, unknown> = {}) => ({
  name: "hostile",
  analysis: { instructions: "Summarise.", ...analysis },
  documents: [{ name: "a.txt", content: "text" }],
  ...over,
});
const nest = (depth: number, leaf: unknown = {}) => {
  let v: unknown = leaf;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
};

/** The batch rows as they stand: a refused request must leave them exactly so. */
const snapshotRows = () => h.db.prisma.batch.findMany({ select: { id: true, version: true, status: true }, orderBy: { id: "asc" } });

function expectRefusal(res: request.Response, status: number, code: string, error?: RegExp) {
  expect({ status: res.status, code: res.body.code }).toEqual({ status, code });
  expect(res.body.success).toBe(false);
  expect(typeof res.body.error).toBe("string");
  if (error) expect(res.body.error).toMatch(error);
}

describe("strings PostgreSQL cannot store", () => {
  test.each([
    ["a NUL in the name", valid({ name: "a\u0000b" }), /body\.name: contains a NUL/],
    ["a NUL in the instructions", valid({}, { instructions: "x\u0000" }), /body\.analysis\.instructions: contains a NUL/],
    ["a lone surrogate in the name", valid({ name: "a\uD800b" }), /body\.name: contains invalid Unicode/],
    ["a lone low surrogate in a schema key", valid({}, { output_schema: { type: "object", properties: { "\uDC00": {} } } }), /a key contains invalid Unicode/],
    ["a NUL in a document name", valid({ documents: [{ name: "a\u0000.txt", content: "x" }] }), /body\.documents\.0\.name/],
  ])("%s is a 400 naming the field, and nothing is created", async (_what, body, error) => {
    const before = await h.db.prisma.batch.count();
    const res = await api().post("/api/batches/save").send(body);
    expectRefusal(res, 400, "validation_failed", error);
    expect(await h.db.prisma.batch.count()).toBe(before);
  });

  test("a NUL inside an inline document's content is kept as bytes, not refused", async () => {
    const res = await api().post("/api/batches/save").send(valid({ documents: [{ name: "a.txt", content: "a\u0000b" }] })).expect(201);
    const doc = await h.db.prisma.document.findFirstOrThrow({ where: { batchId: res.body.batch.id } });
    expect(Buffer.from(doc.content).equals(Buffer.from("a\u0000b"))).toBe(true);
  });

  test("a valid surrogate pair (an emoji) is accepted", async () => {
    await api().post("/api/batches/save").send(valid({ name: "batch 🚀" })).expect(201);
  });

  test("a NUL in an action's reason or context is refused before it reaches the history", async () => {
    const id = await batchIn(driver(), "ANALYZING.running");
    const before = await snapshotRows();
    const history = await h.db.prisma.historyEntry.count({ where: { batchId: id } });
    expectRefusal(await api().post(`/api/batches/${id}/pause`).send({ reason: "x\u0000" }), 400, "validation_failed", /body\.reason/);
    expectRefusal(await api().post(`/api/batches/${id}/action`).send({ action: "pause", context: { note: ["\uD800"] } }), 400, "validation_failed", /body\.context\.note\.0/);
    expect(await snapshotRows()).toEqual(before);
    expect(await h.db.prisma.historyEntry.count({ where: { batchId: id } })).toBe(history);
  });
});

describe("malformed URLs, bodies and headers", () => {
  test("bad percent-encoding in a batch id is a 400, not a 500", async () => {
    expectRefusal(await api().get("/api/batches/%ff"), 400, "malformed_url");
    expectRefusal(await api().post("/api/batches/%E0%A4%A/pause").send({}), 400, "malformed_url");
  });

  test("an unsupported charset is a 415", async () => {
    const res = await api().post("/api/batches/save").set("content-type", "application/json; charset=latin1").send(JSON.stringify(valid()));
    expectRefusal(res, 415, "unsupported_charset", /latin1/);
  });

  test("an unknown or broken Content-Encoding is a 415 / 400", async () => {
    const unknown = await api().post("/api/batches/save").set("content-type", "application/json").set("content-encoding", "x-bogus").send(JSON.stringify(valid()));
    expectRefusal(unknown, 415, "unsupported_encoding");
    const broken = await api().post("/api/batches/save").set("content-type", "application/json").set("content-encoding", "gzip").send("not gzip at all");
    expect(broken.status).toBeGreaterThanOrEqual(400);
    expect(broken.status).toBeLessThan(500);
    expect(broken.body.code).toEqual(expect.any(String));
    // A well-formed gzip body still works (sent with fetch: superagent garbles a gzip request body).
    const server = h.app.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const good = await fetch(`http://127.0.0.1:${port}/api/batches/save`, {
        method: "POST",
        headers: { "content-type": "application/json", "content-encoding": "gzip" },
        body: gzipSync(JSON.stringify(valid())),
      });
      expect(good.status).toBe(201);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("broken multipart bodies are a 400 malformed_multipart", async () => {
    const noBoundary = await api().post("/api/batches/save").set("content-type", "multipart/form-data").send("garbage");
    expectRefusal(noBoundary, 400, "malformed_multipart");
    const cut = await api()
      .post("/api/batches/save")
      .set("content-type", "multipart/form-data; boundary=XX")
      .send('--XX\r\nContent-Disposition: form-data; name="name"\r\n\r\nhalf a for');
    expectRefusal(cut, 400, "malformed_multipart");
  });

  test("a multipart file name with a NUL is refused", async () => {
    const res = await api().post("/api/batches/save").field("name", "m").field("instructions", "x").attach("files", Buffer.from("hi"), "a\u0000.txt");
    expect(res.status).toBe(400);
    expect(res.body.code).toEqual(expect.any(String));
  });

  test("an If-Match too long to be a version is a 400", async () => {
    const id = await batchIn(driver(), "SAVED");
    expectRefusal(await api().post(`/api/batches/${id}/stage`).set("if-match", "9".repeat(400)), 400, "validation_failed", /If-Match/);
  });

  test("unknown query values are a 400 naming the parameter", async () => {
    expectRefusal(await api().get("/api/batches?status=BOGUS"), 400, "validation_failed", /query\.status/);
    expectRefusal(await api().get("/api/batches?limit=1e400"), 400, "validation_failed", /query\.limit/);
    expectRefusal(await api().get("/api/batches?limit=1&limit=2"), 400, "validation_failed", /query\.limit/);
    const id = await batchIn(driver(), "SAVED");
    expectRefusal(await api().get(`/api/batches/${id}/results?format=xml`), 400, "validation_failed", /query\.format/);
    expectRefusal(await api().get(`/api/batches/${id}/history?after_seq=-1`), 400, "validation_failed", /query\.after_seq/);
  });

  test("huge numbers for positions and versions are a 400", async () => {
    const id = await batchIn(driver(), "ANALYZING.running");
    expectRefusal(await api().post(`/api/batches/${id}/pause`).send({ position: 1e300 }), 400, "validation_failed", /body\.position/);
    expectRefusal(await api().post(`/api/batches/${id}/pause`).send({ expected_version: 2 ** 52 }), 400, "validation_failed", /body\.expected_version/);
    expectRefusal(await api().post("/api/queue/reorder").send({ batch_id: id, position: 2 ** 40 }), 400, "validation_failed", /body\.position/);
  });
});

describe("nesting and size limits", () => {
  test("a body nested deeper than 64 levels is a 400", async () => {
    const id = await batchIn(driver(), "ANALYZING.running");
    expectRefusal(await api().post(`/api/batches/${id}/pause`).send({ context: nest(200) }), 400, "validation_failed", /nested deeper than 64/);
    // 100,000 levels of JSON: parsed, then refused without overflowing the stack.
    const deep = `${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}`;
    expectRefusal(await api().post("/api/batches/save").set("content-type", "application/json").send(deep), 400, "validation_failed", /nested deeper/);
  });

  test("an action context over 16 KB is refused, so history stays small", async () => {
    const id = await batchIn(driver(), "ANALYZING.running");
    expectRefusal(await api().post(`/api/batches/${id}/pause`).send({ context: { note: "x".repeat(20_000) } }), 400, "validation_failed", /body\.context: is larger than 16384 bytes/);
  });

  test.each([
    ["name", valid({ name: "n".repeat(201) }), /body\.name/],
    ["instructions", valid({}, { instructions: "i".repeat(100_001) }), /body\.analysis\.instructions/],
    ["document name", valid({ documents: [{ name: "d".repeat(256), content: "x" }] }), /body\.documents\.0\.name/],
    ["model", valid({}, { model: "m".repeat(201) }), /body\.analysis\.model/],
  ])("an oversize %s is a 400 naming it", async (_what, body, error) => {
    expectRefusal(await api().post("/api/batches/save").send(body), 400, "validation_failed", error);
  });
});

describe("output_schema is checked at creation as the worker will compile it", () => {
  test.each([
    ["a remote $ref", { $ref: "https://example.com/schema.json" }, /only references inside the schema/],
    ["an unresolvable local $ref", { $ref: "#/$defs/missing" }, /cannot be compiled/],
    ["600 levels of nesting", nest(600, { type: "string" }), /nested deeper than 64|nests deeper than 32/],
    ["33 levels of nesting", nest(33, { type: "string" }), /nests deeper than 32 levels/],
    ["a pattern RE2 cannot run (a backreference)", { type: "string", pattern: "(a)\\1" }, /cannot be compiled/],
    ["over 64 KB", { type: "object", description: "d".repeat(70_000) }, /the limit is 65536/],
    ["not a JSON Schema", { type: "nonsense" }, /is not a valid JSON Schema/],
  ])("%s is a 400 at creation", async (_what, output_schema, error) => {
    const before = await h.db.prisma.batch.count();
    expectRefusal(await api().post("/api/batches/save").send(valid({}, { output_schema })), 400, "validation_failed", error);
    expect(await h.db.prisma.batch.count()).toBe(before);
  });

  test("a catastrophic pattern is accepted, since RE2 runs it in linear time", async () => {
    await api().post("/api/batches/save").send(valid({}, { output_schema: { type: "string", pattern: "^(a+)+$" } })).expect(201);
  });

  test("local references and a property named $ref are fine", async () => {
    const output_schema = { type: "object", properties: { a: { $ref: "#/$defs/x" }, $ref: { type: "string" } }, $defs: { x: { type: "string" } } };
    await api().post("/api/batches/save").send(valid({}, { output_schema })).expect(201);
  });
});

describe("requests another site could send", () => {
  test("a cross-origin text/plain POST is refused and resets nothing", async () => {
    const id = await batchIn(driver(), "COMPLETED");
    const before = await snapshotRows();
    const results = await h.db.prisma.task.count({ where: { batchId: id, status: "succeeded" } });
    const res = await api()
      .post(`/api/batches/${id}/reset-to-prestage`)
      .set("origin", "https://evil.example")
      .set("content-type", "text/plain")
      .send('{"reason":"gotcha"}');
    expectRefusal(res, 403, "cross_origin");
    const sameOriginPlain = await api().post(`/api/batches/${id}/reset-to-prestage`).set("content-type", "text/plain").send("{}");
    expectRefusal(sameOriginPlain, 415, "unsupported_media_type");
    const form = await api().post(`/api/batches/${id}/reset-to-prestage`).type("form").send({ reason: "x" });
    expectRefusal(form, 415, "unsupported_media_type");
    expect(await snapshotRows()).toEqual(before);
    expect(await h.db.prisma.task.count({ where: { batchId: id, status: "succeeded" } })).toBe(results);
  });

  test("a foreign Origin may not change state even with JSON, but may read", async () => {
    const id = await batchIn(driver(), "ANALYZING.running");
    expectRefusal(await api().post(`/api/batches/${id}/pause`).set("origin", "http://attacker.test").send({}), 403, "cross_origin");
    expectRefusal(await api().delete(`/api/batches/${id}`).set("origin", "null"), 403, "cross_origin");
    await api().get(`/api/batches/${id}`).set("origin", "http://attacker.test").expect(200);
  });

  test("the server's own origin may change state", async () => {
    const id = await batchIn(driver(), "ANALYZING.running");
    const agent = api().post(`/api/batches/${id}/pause`);
    const res = await agent.set("origin", "http://127.0.0.1").set("host", "127.0.0.1").send({});
    expect(res.status).toBe(200);
  });

  test("a Host this server is not (DNS rebinding) is refused on every route", async () => {
    expectRefusal(await api().get("/api/health").set("host", "rebind.attacker.test"), 403, "host_not_allowed");
    expectRefusal(await api().get("/").set("host", "rebind.attacker.test:3000"), 403, "host_not_allowed");
    await api().get("/api/health").set("host", "localhost:3000").expect(200);
    await api().get("/api/health").set("host", "[::1]:3000").expect(200);
  });
});

describe("request ids", () => {
  test("every answer carries an X-Request-Id, the caller's own when it is sane", async () => {
    const own = await api().get("/api/health").set("x-request-id", "abc-123");
    expect(own.headers["x-request-id"]).toBe("abc-123");
    const fresh = await api().get("/api/health").set("x-request-id", "bad id\twith spaces");
    expect(fresh.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    const refused = await api().get("/api/batches/%ff");
    expect(refused.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });
});
