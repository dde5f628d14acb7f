// Who may do what with keys on: every route the app serves (walked from its own router stack) refuses an anonymous caller with 401; a viewer gets 403 on every change; a tenant's key never sees another tenant's batches (404, lists, queue, live stream) while an admin sees all; history names the key; keys are created, listed and revoked by admins only and stored only as a hash.
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import request from "supertest";
import { sha256 } from "../src/auth/api-keys";
import { ADMIN_KEY, createAuthSystem, type AuthSystem } from "./support/auth";

let s: AuthSystem;
let server: Server;
let base = "";
const keys: Record<string, { id: string; key: string }> = {};
let batchA = "";
let batchB = "";
let docB = "";

const bearer = (who: string) => ({ authorization: `Bearer ${keys[who]!.key}` });
const doc = (name: string) => ({ name: `${name}.txt`, content: `The text of ${name}.`, mime_type: "text/plain" });
const createBody = (name: string) => ({ name, analysis: { instructions: "Summarise." }, documents: [doc(name)] });

beforeAll(async () => {
  s = await createAuthSystem();
  server = await new Promise((resolve) => {
    const srv = s.app.listen(0, "127.0.0.1", () => resolve(srv));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  keys.viewerA = await s.key("viewer", "acme");
  keys.operatorA = await s.key("operator", "acme", "ci-acme");
  keys.operatorB = await s.key("operator", "globex");
  keys.adminKey = await s.key("admin", "ops");
  batchA = (await request(s.app).post("/api/batches/save").set(bearer("operatorA")).send(createBody("acme-batch")).expect(201)).body.batch.id;
  const b = await request(s.app).post("/api/batches/save").set(bearer("operatorB")).send(createBody("globex-batch")).expect(201);
  batchB = b.body.batch.id;
  docB = (await request(s.app).get(`/api/batches/${batchB}/documents`).set(bearer("operatorB")).expect(200)).body.documents[0].id;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await s?.close();
});

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
  rawPath?: string | string[];
}

/**
 * Every route the app would answer, with its full path, walked from Express's own router
 * stack. A handler mounted on a path that cannot be walked into (a mounted app such as the
 * dashboard) stands for every method on everything under that path.
 */
function routesOf(stack: Layer[], prefix = ""): { method: string; path: string }[] {
  const out: { method: string; path: string }[] = [];
  for (const layer of stack) {
    const raw = Array.isArray(layer.rawPath) ? layer.rawPath[0] : layer.rawPath;
    const here = typeof raw === "string" && raw !== "/" ? raw : "";
    if (layer.route) {
      for (const method of Object.keys(layer.route.methods)) out.push({ method: method === "_all" ? "get" : method, path: prefix + layer.route.path });
    } else if (layer.handle.stack) {
      out.push(...routesOf(layer.handle.stack, prefix + here));
    } else if (here) {
      for (const method of ["get", "post", "put", "delete"]) out.push({ method, path: `${prefix}${here}/{*rest}` });
    }
  }
  return out;
}

/** A concrete URL for a route pattern: B's batch and document, a real key id, anything for the rest. */
function concrete(pattern: string): string {
  return pattern
    .replace(":id", batchB)
    .replace(":documentId", docB)
    .replace(":keyId", keys.operatorB!.id)
    .replace(/\{\*\w+\}/g, "anything")
    .replace(/:(\w+)/g, "$1");
}

/** Paths anyone may open: the UI's files, the machine drawing (its batch overlay is checked below), health probes. */
const PUBLIC = [/^\/machine(\/|$)/, /^\/\{\*splat\}$/, /^\/$/, /^\/(healthz|readyz)$/];
// /metrics answers loopback callers (every test request is one) or admins: ops' own tests cover the rest.
const LOOPBACK_OR_ADMIN = [/^\/metrics$/];

const allRoutes = () => routesOf((s.app as unknown as { router: { stack: Layer[] } }).router.stack);
const send = (method: string, url: string) => (request(s.app) as unknown as Record<string, (u: string) => request.Test>)[method]!(url);

describe("every route with keys on", () => {
  test("the walk finds the API, the dashboard, the visualizer and the UI", () => {
    const paths = allRoutes().map((r) => `${r.method.toUpperCase()} ${r.path}`);
    expect(paths.length).toBeGreaterThan(25);
    for (const p of ["POST /api/batches/save", "GET /api/events", "POST /api/keys", "DELETE /api/keys/:keyId", "GET /api/session", "GET /machine/"]) {
      expect(paths).toContain(p);
    }
    expect(paths).toContain("PUT /admin/queues/{*rest}");
  });

  test("anonymous: 401 unauthorized on every route that is not public", async () => {
    const guarded = allRoutes().filter((r) => !PUBLIC.some((p) => p.test(r.path)) && !LOOPBACK_OR_ADMIN.some((p) => p.test(r.path)));
    expect(guarded.length).toBeGreaterThan(25);
    const answers: string[] = [];
    for (const r of guarded) {
      const res = await send(r.method, concrete(r.path)).send({});
      if (res.status !== 401 || res.body.code !== "unauthorized") answers.push(`${r.method.toUpperCase()} ${r.path} answered ${res.status}`);
    }
    expect(answers).toEqual([]);
  });

  test("an unknown key and a revoked key get exactly the same answer as no key", async () => {
    const revoked = await s.key("operator", "acme");
    await s.keys.revoke(revoked.id);
    const forged = `trk_${revoked.id}_${"A".repeat(43)}`;
    const answers = await Promise.all(
      [undefined, "nonsense", forged, revoked.key].map(async (key) => {
        const req = request(s.app).get(`/api/batches/${batchA}`);
        const res = await (key ? req.set("x-api-key", key) : req);
        return { status: res.status, body: res.body };
      }),
    );
    for (const a of answers) expect(a).toEqual(answers[0]);
    expect(answers[0]!.status).toBe(401);
  });

  test("a viewer gets 403 forbidden on every route that changes something, and may sign in and out", async () => {
    const mutating = allRoutes().filter((r) => !["get", "head", "options"].includes(r.method) && !PUBLIC.some((p) => p.test(r.path)));
    expect(mutating.length).toBeGreaterThan(12);
    const answers: string[] = [];
    for (const r of mutating) {
      const res = await send(r.method, concrete(r.path).replace(batchB, batchA)).set(bearer("viewerA")).send({});
      const isSession = r.path === "/api/session";
      if (isSession ? res.status !== 200 : res.status !== 403 || res.body.code !== "forbidden") {
        answers.push(`${r.method.toUpperCase()} ${r.path} answered ${res.status}`);
      }
    }
    expect(answers).toEqual([]);
    expect((await request(s.app).get(`/api/batches/${batchA}`).set(bearer("viewerA"))).status).toBe(200);
  });

  test("the queue dashboard needs an admin; the drawing of the machine does not, a batch's overlay does", async () => {
    expect((await request(s.app).get("/admin/queues").set(bearer("operatorA"))).status).toBe(403);
    expect((await request(s.app).get("/admin/queues").set("x-api-key", ADMIN_KEY)).status).toBe(200);
    expect((await request(s.app).get("/admin/queues").set(bearer("adminKey"))).status).toBe(200);
    expect((await request(s.app).get("/machine/diagram.mmd")).status).toBe(200);
    const anonymous = await request(s.app).get(`/machine/diagram.mmd?batch=${batchA}`);
    expect(anonymous.status).toBe(401);
    const page = await request(s.app).get(`/machine?batch=${batchA}`);
    expect(page.status).toBe(401);
    expect(page.text).not.toContain("acme-batch");
    const own = await request(s.app).get(`/machine?batch=${batchA}`).set(bearer("viewerA"));
    expect(own.status).toBe(200);
    expect(own.text).toContain("acme-batch");
  });
});

describe("tenants", () => {
  test("a tenant's key gets 404 for another tenant's batch, its documents, history, results and every change", async () => {
    const a = bearer("operatorA");
    const reads = [`/api/batches/${batchB}`, `/api/batches/${batchB}/documents`, `/api/batches/${batchB}/history`, `/api/batches/${batchB}/results?format=json`];
    for (const url of reads) {
      const res = await request(s.app).get(url).set(a);
      expect([url, res.status, res.body.code]).toEqual([url, 404, "not_found"]);
    }
    const changes = [
      request(s.app).post(`/api/batches/${batchB}/stage`).set(a).send({}),
      request(s.app).post(`/api/batches/${batchB}/action`).set(a).send({ action: "stage" }),
      request(s.app).delete(`/api/batches/${batchB}`).set(a),
      request(s.app).post(`/api/batches/${batchB}/documents`).set(a).send({ documents: [doc("intruder")] }),
      request(s.app).delete(`/api/batches/${batchB}/documents/${docB}`).set(a),
      request(s.app).post("/api/queue/reorder").set(a).send({ batch_id: batchB, position: 1 }),
    ];
    for (const res of await Promise.all(changes)) expect([res.status, res.body.code]).toEqual([404, "not_found"]);
    // The 404 of a batch that exists elsewhere reads like that of one that does not exist.
    const missing = await request(s.app).get("/api/batches/00000000-0000-4000-8000-000000000000").set(a);
    expect(Object.keys(missing.body).sort()).toEqual(Object.keys((await request(s.app).get(`/api/batches/${batchB}`).set(a)).body).sort());
    const b = await s.harness.db.prisma.batch.findUniqueOrThrow({ where: { id: batchB }, include: { _count: { select: { documents: true } } } });
    expect([b.status, b.version, b._count.documents]).toEqual(["SAVED", 1, 1]);
    expect((await request(s.app).get(`/machine?batch=${batchB}`).set(a)).status).toBe(404);
  });

  test("lists and the queue show only the caller's tenant; an admin sees both", async () => {
    const listA = (await request(s.app).get("/api/batches").set(bearer("viewerA")).expect(200)).body;
    expect(listA.batches.map((x: { id: string }) => x.id)).toEqual([batchA]);
    expect(listA.total).toBe(1);
    const listB = (await request(s.app).get("/api/batches").set(bearer("operatorB")).expect(200)).body;
    expect(listB.batches.map((x: { id: string; tenant: string }) => [x.id, x.tenant])).toEqual([[batchB, "globex"]]);
    const all = (await request(s.app).get("/api/batches").set("authorization", `Bearer ${ADMIN_KEY}`).expect(200)).body;
    expect(all.batches.map((x: { id: string }) => x.id).sort()).toEqual([batchA, batchB].sort());
    expect((await request(s.app).get(`/api/batches/${batchB}/history`).set(bearer("adminKey"))).status).toBe(200);
    const queueA = (await request(s.app).get("/api/queue").set(bearer("viewerA")).expect(200)).body;
    expect([...queueA.running, ...queueA.queued]).toEqual([]);
  });

  test("every history entry made with a key names it", async () => {
    await request(s.app).post(`/api/batches/${batchA}/documents`).set(bearer("operatorA")).send({ documents: [doc("second")] }).expect(201);
    await request(s.app).post(`/api/batches/${batchA}/pause`).set(bearer("operatorA")).send({}).expect(409);
    const history = (await request(s.app).get(`/api/batches/${batchA}/history`).set(bearer("viewerA")).expect(200)).body.history;
    const actor = `ci-acme (${keys.operatorA!.id})`;
    expect(history.map((h: { event_type: string; outcome: string; actor: string }) => [h.event_type, h.outcome, h.actor])).toEqual([
      ["created", "accepted", actor],
      ["DOCUMENTS_ADDED", "accepted", actor],
      ["pause", "refused", actor],
    ]);
  });

  test("the live stream shows a tenant only its own batches' changes; an admin sees both", async () => {
    const streamA = await openStream({ authorization: `Bearer ${keys.viewerA!.key}` });
    const streamAdmin = await openStream({ "x-api-key": ADMIN_KEY });
    try {
      await request(s.app).post(`/api/batches/${batchB}/stage`).set(bearer("operatorB")).send({}).expect(200);
      await request(s.app).post(`/api/batches/${batchA}/stage`).set(bearer("operatorA")).send({}).expect(200);
      await until(() => streamA.text().includes(batchA) && streamAdmin.text().includes(batchA) && streamAdmin.text().includes(batchB));
      // B's change was committed first, so had it been sent to A it would already be there.
      expect(streamA.text()).not.toContain(batchB);
      expect(streamA.text()).not.toContain("globex");
    } finally {
      streamA.close();
      streamAdmin.close();
    }
  });

  test("the UI's session cookie opens the stream and the visualizer, but never counts for a change", async () => {
    const signIn = await request(s.app).post("/api/session").set(bearer("operatorA")).expect(200);
    expect(signIn.body.key).toEqual({ id: keys.operatorA!.id, name: "ci-acme", role: "operator", tenant: "acme" });
    const cookie = (signIn.headers["set-cookie"] as unknown as string[])[0]!.split(";")[0]!;
    expect(signIn.headers["set-cookie"]![0]).toMatch(/HttpOnly/i);
    expect(signIn.headers["set-cookie"]![0]).toMatch(/SameSite=Strict/i);
    expect((await request(s.app).get(`/api/batches/${batchA}`).set("cookie", cookie)).status).toBe(200);
    expect((await request(s.app).get(`/machine?batch=${batchA}`).set("cookie", cookie)).text).toContain("acme-batch");
    const change = await request(s.app).post("/api/batches/save").set("cookie", cookie).send(createBody("by-cookie"));
    expect(change.status).toBe(401);
    const out = await request(s.app).delete("/api/session").set(bearer("operatorA")).expect(200);
    expect(out.headers["set-cookie"]![0]).toMatch(/tranche_key=;/);
  });
});

describe("keys", () => {
  test("admins create, list and revoke keys; the key is shown once and revoked at once", async () => {
    const created = await request(s.app).post("/api/keys").set(bearer("adminKey")).send({ name: "ci", role: "operator", tenant: "acme" }).expect(201);
    expect(created.body).toMatchObject({ success: true, name: "ci", role: "operator", tenant: "acme" });
    expect(created.body.key).toMatch(/^trk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(created.body.key.slice(21), "base64url").length).toBeGreaterThanOrEqual(32);
    const list = await request(s.app).get("/api/keys").set("x-api-key", ADMIN_KEY).expect(200);
    const listed = list.body.keys.find((k: { id: string }) => k.id === created.body.id);
    expect(listed).toEqual({ id: created.body.id, name: "ci", role: "operator", tenant: "acme", created_at: expect.any(String), revoked_at: null });
    expect(JSON.stringify(list.body)).not.toContain(created.body.key.slice(21));

    expect((await request(s.app).get("/api/batches").set("x-api-key", created.body.key)).status).toBe(200);
    await request(s.app).delete(`/api/keys/${created.body.id}`).set(bearer("adminKey")).expect(200);
    expect((await request(s.app).get("/api/batches").set("x-api-key", created.body.key)).status).toBe(401);
    expect((await request(s.app).delete("/api/keys/0123456789abcdef").set(bearer("adminKey"))).status).toBe(404);
  });

  test("only admins manage keys, and a bad request names what was wrong", async () => {
    expect((await request(s.app).get("/api/keys").set(bearer("operatorA"))).status).toBe(403);
    expect((await request(s.app).post("/api/keys").set(bearer("operatorA")).send({ name: "x", role: "admin" })).status).toBe(403);
    const bad = await request(s.app).post("/api/keys").set(bearer("adminKey")).send({ name: "x", role: "root", tenant: "a b" }).expect(400);
    expect(bad.body.code).toBe("validation_failed");
    expect(bad.body.error).toMatch(/body\.role/);
    expect(bad.body.error).toMatch(/body\.tenant/);
  });

  test("the table holds no key: only a sha256 of each", async () => {
    const made = await request(s.app).post("/api/keys").set(bearer("adminKey")).send({ name: "audit", role: "viewer", tenant: "acme" }).expect(201);
    const secret = (made.body.key as string).slice(21);
    const rows = await s.harness.db.prisma.$queryRawUnsafe<Record<string, unknown>[]>("SELECT * FROM api_keys");
    const dump = JSON.stringify(rows);
    expect(rows.length).toBeGreaterThanOrEqual(5);
    expect(dump).not.toContain(secret);
    expect(dump).not.toContain(made.body.key);
    for (const k of Object.values(keys)) expect(dump).not.toContain(k.key);
    const row = rows.find((r) => r.id === made.body.id)!;
    expect(row.hash).toBe(sha256(made.body.key).toString("hex"));
  });
});

interface Stream {
  text(): string;
  close(): void;
}

async function openStream(headers: Record<string, string>): Promise<Stream> {
  const abort = new AbortController();
  const res = await fetch(`${base}/api/events`, { headers, signal: abort.signal });
  expect(res.status).toBe(200);
  let text = "";
  const reader = res.body!.getReader();
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += Buffer.from(value).toString();
      }
    } catch {
      // aborted
    }
  })();
  return { text: () => text, close: () => abort.abort() };
}

async function until(check: () => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 25));
  }
}
