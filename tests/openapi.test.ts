// The OpenAPI document: valid OpenAPI 3.1 by a real validator, served at /api/openapi.json with a docs UI that needs no CDN, covering every route of the router and every error code of the README, and the API's answers match it.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Express } from "express";
import request from "supertest";
import { openApiPath } from "../src/server/openapi";
import { checkAnswers, openApiDocument } from "./support/openapi-check";
import { createOpsSystem, type OpsSystem } from "./support/ops-app";
import { waitForStatus } from "./support/system";

const root = path.join(__dirname, "..");
let s: OpsSystem;
let checked: ReturnType<typeof checkAnswers>;
beforeAll(async () => {
  s = await createOpsSystem({ config: { STAGING_TOLERANCE: 0.5 } });
  checked = checkAnswers(s.opsApp);
});
afterAll(() => s.close());
afterEach(() => {
  expect(checked.problems).toEqual([]);
  checked.problems.length = 0;
});

function validate(file?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", path.join(root, "scripts", "validate-openapi.ts"), ...(file ? [file] : [])], { cwd: root }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

test("the document is valid OpenAPI 3.1, and the validator does catch a broken one", async () => {
  const ok = await validate();
  expect(ok).toEqual({ code: 0, out: "valid OpenAPI 3.1\n" });
  const broken = structuredClone(openApiDocument) as { paths: Record<string, Record<string, { responses: unknown }>> };
  (broken.paths["/api/batches"] as Record<string, { responses: unknown }>).get!.responses = { "20X": { content: {} } };
  const file = path.join(mkdtempSync(path.join(tmpdir(), "tranche-openapi-")), "broken.json");
  writeFileSync(file, JSON.stringify(broken));
  const bad = await validate(file);
  expect(bad.code).toBe(1);
}, 60_000);

test("GET /api/openapi.json serves the document; /api/docs serves Swagger UI from the package, not a CDN", async () => {
  const doc = await request(checked.app).get("/api/openapi.json").expect(200);
  expect(doc.body.openapi).toBe("3.1.0");
  expect(doc.body.paths).toEqual(openApiDocument.paths);
  const page = await request(checked.app).get("/api/docs/").expect(200);
  expect(page.text).toContain("swagger-ui");
  expect(page.text).not.toMatch(/(src|href)="https?:\/\//);
  await request(checked.app).get("/api/docs/swagger-ui-bundle.js").expect(200);
  const init = await request(checked.app).get("/api/docs/swagger-ui-init.js").expect(200);
  expect(init.text).toContain("/api/openapi.json");
});

/** Every route Express would serve: [METHOD, path] from the router stack, mounted prefixes included. */
function routesOf(app: Express): string[] {
  const out: string[] = [];
  type Layer = { route?: { path: string; methods: Record<string, boolean> }; handle?: { stack?: Layer[] }; rawPath?: string };
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const method of Object.keys(layer.route.methods)) out.push(`${method.toUpperCase()} ${prefix}${layer.route.path}`);
      } else if (layer.handle?.stack) {
        const mount = typeof layer.rawPath === "string" && layer.rawPath !== "/" ? layer.rawPath : "";
        walk(layer.handle.stack, prefix + mount);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, "");
  return out;
}

test("every route of the router is in the document", () => {
  const routes = routesOf(s.opsApp);
  expect(routes).toEqual(expect.arrayContaining(["GET /api/batches/:id", "POST /api/batches/:id/pause", "GET /api/events", "GET /metrics", "DELETE /api/keys/:keyId"]));
  const paths = openApiDocument.paths as Record<string, Record<string, unknown>>;
  const missing = routes.filter((r) => {
    const [method, route] = r.split(" ") as [string, string];
    return !paths[openApiPath(route)]?.[method.toLowerCase()];
  });
  expect(missing).toEqual([]);
});

test("every error code of the README's error table is in the document, under its status", () => {
  const readme = readFileSync(path.join(root, "README.md"), "utf8");
  const table = readme.slice(readme.indexOf("### Errors"), readme.indexOf("## Configuration"));
  const rows = [...table.matchAll(/^\| (\d{3}) \| `([a-z_]+)` \|/gm)].map((m) => [Number(m[1]), m[2] as string] as const);
  expect(rows.length).toBeGreaterThan(8);
  const responses = (openApiDocument.components as { responses: Record<string, { content: Record<string, { schema: { properties: { code: { enum: string[] } } } }> }> }).responses;
  const documented = (status: number) => {
    const names = new Set<string>();
    for (const item of Object.values(openApiDocument.paths as Record<string, Record<string, { responses: Record<string, { $ref?: string }> }>>)) {
      for (const op of Object.values(item)) {
        const ref = op.responses[String(status)]?.$ref;
        if (ref) names.add(ref.split("/").pop() as string);
      }
    }
    return [...names].flatMap((n) => responses[n]?.content["application/json"]?.schema.properties.code.enum ?? []);
  };
  const missing = rows.filter(([status, code]) => !documented(status).includes(code));
  expect(missing).toEqual([]);
});

test("the API's answers match the document, refusals and errors included", async () => {
  const api = () => request(checked.app);
  const documents = [
    { name: "a.txt", content: "The first document." },
    { name: "b.md", content_base64: Buffer.from("# Second\n\nA document.").toString("base64") },
  ];
  const created = await api().post("/api/batches/stage").send({ name: "openapi", analysis: { instructions: "Summarise." }, documents }).expect(201);
  const id = created.body.batch.id as string;
  await waitForStatus(s, id, "STAGED");
  await api().get("/api/batches?status=STAGED,SAVED&limit=5").expect(200);
  await api().get(`/api/batches/${id}`).expect(200);
  await api().get(`/api/batches/${id}/documents`).expect(200);
  await api().post(`/api/batches/${id}/pause`).send({ reason: "not running" }).expect(409);
  await api().post(`/api/batches/${id}/action`).set("If-Match", "1").send({ action: "run" }).expect(412);
  await api().post(`/api/batches/${id}/run`).expect(200);
  await waitForStatus(s, id, "COMPLETED");
  await api().get(`/api/batches/${id}/history?after_seq=0&limit=100`).expect(200);
  await api().get(`/api/batches/${id}/results?format=json`).expect(200);
  await api().get(`/api/batches/${id}/results?format=csv`).expect(200);
  await api().get(`/api/batches/${id}/results?format=jsonl`).expect(200);
  await api().get("/api/queue").expect(200);
  await api().post("/api/queue/reorder").send({ batch_id: id, position: 1 }).expect(409);
  const saved = await api().post("/api/batches/save").send({ name: "docs", analysis: { instructions: "x" } }).expect(201);
  const savedId = saved.body.batch.id as string;
  const added = await api().post(`/api/batches/${savedId}/documents`).send({ documents: [{ name: "c.txt", content: "c" }] }).expect(201);
  await api().delete(`/api/batches/${savedId}/documents/${added.body.document_ids[0]}`).expect(200);
  await api().delete(`/api/batches/${savedId}`).expect(200);
  await api().get(`/api/batches/${savedId}`).expect(404);
  await api().post("/api/batches/save").send({ name: "" }).expect(400);
  await api().post("/api/batches/save").set("content-type", "application/json").send("{not json").expect(400);
  await api().get("/api/session").expect(200);
  const key = await api().post("/api/keys").send({ name: "ci", role: "viewer" }).expect(201);
  await api().get("/api/keys").expect(200);
  await api().delete(`/api/keys/${key.body.id}`).expect(200);
  await api().get("/api/health").expect(200);
  await api().get("/healthz").expect(200);
  await api().get("/readyz").expect(200);
  await api().get("/metrics").expect(200);
  expect(checked.problems).toEqual([]);
});

test("the checker itself flags an answer that does not match", async () => {
  const { answerProblems } = await import("./support/openapi-check");
  expect(answerProblems("GET", "/api/batches/00000000-0000-4000-8000-000000000000", 200, "application/json", { success: true, batch: { id: 7 } })).not.toEqual([]);
  expect(answerProblems("GET", "/api/batches", 418, "application/json", {})).toEqual(["GET /api/batches answered 418, which the document does not list"]);
  expect(answerProblems("GET", "/healthz", 200, "text/html", "<p>")).toHaveLength(1);
});
