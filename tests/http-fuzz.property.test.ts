// Property: for every route of the API (found by walking Express's router stack), any generated hostile request — params, query, headers, body — gets no 5xx, every 4xx carries code and error, and a refused request changes no batch (rows and versions compared before and after).
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { answerClientErrors } from "../src/server/client-errors";
import { batchIn, type Target } from "./support/drive";
import { createHarness, type Harness } from "./support/harness";
import { answerProblems, hostileRequests, listRoutes, send, targetBatch } from "./support/hostile-requests";

let h: Harness;
let server: Server;
let base: string;
const ids: string[] = [];

beforeAll(async () => {
  h = await createHarness({ maxRunningBatches: 2, bodyLimit: "1mb" });
  const d = { service: h.engine.service, prisma: h.db.prisma };
  const targets: Target[] = ["SAVED", "STAGING", "STAGED", "ANALYZING.queued", "ANALYZING.running", "PAUSED", "COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED", "FAILED_STAGING", "CANCELLED"];
  for (const t of [...targets, ...targets]) ids.push(await batchIn(d, t));
  server = await new Promise((resolve) => {
    const s = h.app.listen(0, "127.0.0.1", () => resolve(s));
  });
  answerClientErrors(server);
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await h.close();
});

/**
 * Everything a refused request must leave as it was: every batch row (snapshot, version,
 * counters…) and the documents and tasks. Only the audit trail may grow — a refusal is
 * recorded in history, which moves the row's `historySeq` and `updatedAt` — so those two are
 * left out.
 */
async function state() {
  const [rows, documents, tasks] = await Promise.all([
    h.db.prisma.batch.findMany({ orderBy: { id: "asc" } }),
    h.db.prisma.document.findMany({ select: { id: true, batchId: true, stageStatus: true }, orderBy: { id: "asc" } }),
    h.db.prisma.task.findMany({ select: { id: true, status: true }, orderBy: { id: "asc" } }),
  ]);
  const batches = rows.map(({ updatedAt: _u, historySeq: _h, ...row }) => row);
  return { batches, documents, tasks };
}

test("the walk finds every route, the per-action ones included", () => {
  const routes = listRoutes(h.app).map((r) => `${r.method} ${r.path}`);
  expect(routes).toEqual(expect.arrayContaining(["POST /api/batches/save", "GET /api/batches/:id/results", "POST /api/batches/:id/reset-to-prestage", "DELETE /api/batches/:id/documents/:documentId", "GET /api/health"]));
  expect(routes.length).toBeGreaterThanOrEqual(20);
});

// Route by route, so every route gets its share however the machine is loaded (~25 s alone).
const RUNS_PER_ROUTE = Number(process.env.FUZZ_RUNS_PER_ROUTE ?? 16);

test("hostile requests to every route: no 5xx, every refusal explained, nothing changed by a refusal", async () => {
  const routes = listRoutes(h.app);
  const host = new URL(base).host;
  for (const route of routes) {
    await fc.assert(
      fc.asyncProperty(hostileRequests([route], ids, host), async (req) => {
        const before = await state();
        const res = await send(base, req);
        expect(answerProblems(req, res)).toEqual([]);
        if (res.status >= 400) expect(await state()).toEqual(before);
        else if (targetBatch(req) === undefined && req.method === "GET") expect(await state()).toEqual(before);
      }),
      { numRuns: RUNS_PER_ROUTE, endOnFailure: true },
    );
  }
}, 180_000);
