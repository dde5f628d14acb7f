// How the UI and the visualizer are served, without a browser: client routes fall back to index.html, missing files stay 404s, an unbuilt UI says how to build it, and /machine renders a batch's standing around the diagram (or a 404 page for an unknown batch).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import express from "express";
import request from "supertest";
import { createAuth } from "../../src/auth/guard";
import { NotFoundError } from "../../src/errors";
import { createMachineRouter } from "../../src/server/machine-view";
import { createUiRouter } from "../../src/server/ui";

const BATCH = "6f1c1f0e-0000-4000-8000-000000000001";
let dist: string;

beforeAll(() => {
  dist = mkdtempSync(path.join(os.tmpdir(), "tranche-dist-"));
  mkdirSync(path.join(dist, "assets"));
  writeFileSync(path.join(dist, "index.html"), "<!doctype html><div id=root></div>");
  writeFileSync(path.join(dist, "machine.html"), "<!doctype html><body><!--machine-view--><script src=/assets/m.js></script></body>");
  writeFileSync(path.join(dist, "assets", "app-abc123.js"), "export {}");
});
afterAll(() => rmSync(dist, { recursive: true, force: true }));

function app(distDir = dist) {
  const a = express();
  // The local single user, as createApp identifies every request when authentication is off.
  a.use(createAuth({ mode: { kind: "local" } }).identify);
  a.use(
    "/machine",
    createMachineRouter({
      distDir,
      getBatch: async (id) => {
        if (id !== BATCH) throw new NotFoundError("Batch", id);
        return { name: "Q3 <contracts>", status: "ANALYZING", substate: "running", allowed_actions: ["pause", "cancel"], tenant: "default" };
      },
      getPath: async () => ({ states: ["SAVED", "STAGING", "STAGED", "ANALYZING.running"], omitted: 0 }),
    }),
  );
  a.use("/", createUiRouter({ distDir }));
  return a;
}

describe("the UI router", () => {
  test.each(["/", "/new", "/queue", `/batches/${BATCH}`])("answers the app for the client route %s", async (route) => {
    const res = await request(app()).get(route).set("accept", "text/html").expect(200);
    expect(res.text).toContain('<div id=root>');
    expect(res.headers["cache-control"]).toBe("no-cache");
  });

  test("serves hashed assets as immutable, and a missing file as a 404", async () => {
    const res = await request(app()).get("/assets/app-abc123.js").expect(200);
    expect(res.headers["cache-control"]).toContain("immutable");
    await request(app()).get("/assets/gone-000.js").expect(404);
  });

  test("says how to build the UI when it is not built", async () => {
    const res = await request(app(path.join(dist, "nowhere"))).get("/").set("accept", "text/html").expect(503);
    expect(res.text).toMatch(/npm run ui:build/);
  });
});

describe("the machine visualizer", () => {
  test("draws the machine into the UI bundle's page", async () => {
    const res = await request(app()).get("/machine").expect(200);
    expect(res.text).toContain("<script src=/assets/m.js>");
    expect(res.text).toContain("stateDiagram-v2");
    expect(res.text).not.toContain("classDef");
  });

  test("with ?batch= shows where the batch stands, what it may do and the way it came", async () => {
    const res = await request(app()).get(`/machine?batch=${BATCH}`).expect(200);
    expect(res.text).toContain("Q3 &lt;contracts&gt;");
    expect(res.text).toMatch(/data-testid="current-state">ANALYZING\.running</);
    expect(res.text).toMatch(/<li>pause<\/li><li>cancel<\/li>/);
    expect(res.text).toContain("<ol class=\"state-path\"><li>SAVED</li><li>STAGING</li><li>STAGED</li><li>ANALYZING.running</li></ol>");
    expect(res.text).toContain("class ANALYZING_running current");
  });

  test("answers the Mermaid text at diagram.mmd", async () => {
    const res = await request(app()).get(`/machine/diagram.mmd?batch=${BATCH}`).expect(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain/);
    expect(res.text).toMatch(/^stateDiagram-v2\n/);
    expect(res.text).toMatch(/class SAVED,STAGING,STAGED visited/);
    expect(res.text).toMatch(/class PAUSED,CANCELLED next/);
  });

  test("an unknown or malformed batch id is a 404 page that still shows the machine", async () => {
    for (const id of ["6f1c1f0e-0000-4000-8000-0000000000ff", "not-a-uuid"]) {
      const res = await request(app()).get(`/machine?batch=${id}`).expect(404);
      expect(res.text).toContain(`Batch ${id} not found`);
      expect(res.text).toContain("stateDiagram-v2");
    }
  });

  test("without the UI bundle the page still shows the diagram as text", async () => {
    const res = await request(app(path.join(dist, "nowhere"))).get("/machine").expect(200);
    expect(res.text).toMatch(/<!doctype html>/);
    expect(res.text).toMatch(/npm run ui:build/);
    expect(res.text).toContain("SAVED --&gt; STAGING");
  });
});
