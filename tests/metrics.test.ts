// /metrics after a small batch: the transition, store, provider and queue series exist and have moved, no label carries a batch id, and a worker process serves the same endpoints on METRICS_PORT.
import { createServer } from "node:net";
import request from "supertest";
import { replies } from "./support/fake-llm";
import { createOpsSystem, type OpsSystem } from "./support/ops-app";
import { parsePrometheus, valueOf } from "./support/prometheus";
import { waitFor, waitForStatus } from "./support/system";

let s: OpsSystem;
beforeAll(async () => {
  // The first provider call is rate limited, so that 429s show in the series.
  s = await createOpsSystem({ fake: { respond: (body, n) => (n === 1 ? replies.rateLimited({ ms: 10 }) : replies.default(body)) } });
});
afterAll(() => s.close());

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

async function scrape(app = s.opsApp) {
  const res = await request(app).get("/metrics").expect(200);
  expect(res.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
  return { text: res.text, samples: parsePrometheus(res.text) };
}

test("a small batch moves the transition, store, provider and queue series; no label carries an id", async () => {
  const before = await scrape();
  expect(valueOf(before.samples, "tranche_transitions_total")).toBe(0);

  const documents = ["alpha", "beta", "gamma"].map((w) => ({ name: `${w}.txt`, content: `The ${w} document has a few words in it.` }));
  const created = await request(s.opsApp)
    .post("/api/batches/stage")
    .send({ name: "metrics", analysis: { instructions: "Summarise.", model: "gpt-4o-mini" }, documents })
    .expect(201);
  const id = created.body.batch.id as string;
  await waitForStatus(s, id, "STAGED");
  await request(s.opsApp).post(`/api/batches/${id}/run`).expect(200);
  await waitForStatus(s, id, "COMPLETED");
  await request(s.opsApp).post(`/api/batches/${id}/pause`).expect(409);

  const { text, samples } = await scrape();
  const accepted = (event: string) => valueOf(samples, "tranche_transitions_total", { event, outcome: "accepted" });
  expect(accepted("stage")).toBe(1);
  expect(accepted("run")).toBe(1);
  expect(accepted("START")).toBe(1);
  expect(accepted("DOCUMENT_STAGED")).toBe(3);
  expect(accepted("TASK_COMPLETED")).toBe(3);
  expect(valueOf(samples, "tranche_transitions_total", { event: "pause", outcome: "refused" })).toBe(1);

  expect(valueOf(samples, "tranche_store_group_size_count")).toBeGreaterThanOrEqual(5);
  expect(valueOf(samples, "tranche_store_group_size_sum")).toBeGreaterThanOrEqual(valueOf(samples, "tranche_store_group_size_count"));
  expect(valueOf(samples, "tranche_store_transaction_duration_seconds_count")).toBe(valueOf(samples, "tranche_store_group_size_count"));
  expect(valueOf(samples, "tranche_store_transaction_duration_seconds_sum")).toBeGreaterThan(0);

  const provider = { provider: "openai", model: "gpt-4o-mini" };
  expect(valueOf(samples, "tranche_provider_requests_total", { ...provider, status: "200" })).toBe(3);
  expect(valueOf(samples, "tranche_provider_requests_total", { ...provider, status: "429" })).toBe(1);
  expect(valueOf(samples, "tranche_provider_request_duration_seconds_count", provider)).toBe(4);
  expect(valueOf(samples, "tranche_provider_tokens_total", { ...provider, kind: "input" })).toBeGreaterThan(0);
  expect(valueOf(samples, "tranche_provider_tokens_total", { ...provider, kind: "output" })).toBeGreaterThan(0);
  expect(valueOf(samples, "tranche_provider_cost_usd_total", provider)).toBeGreaterThan(0);

  expect(valueOf(samples, "tranche_jobs", { queue: "analysis", state: "completed" })).toBe(3);
  expect(valueOf(samples, "tranche_jobs", { queue: "staging", state: "completed" })).toBe(3);
  expect(valueOf(samples, "tranche_jobs", { queue: "analysis", state: "waiting" })).toBe(0);
  expect(valueOf(samples, "tranche_batches", { state: "COMPLETED" })).toBe(1);
  expect(valueOf(samples, "tranche_batches", { state: "ANALYZING" })).toBe(0);
  expect(samples.some((x) => x.name === "tranche_outbox_pending")).toBe(true);
  expect(samples.some((x) => x.name === "tranche_outbox_oldest_age_seconds")).toBe(true);
  expect(samples.some((x) => x.name === "tranche_reconciler_repairs_total")).toBe(true);
  expect(samples.some((x) => x.name === "tranche_process_cpu_seconds_total")).toBe(true);

  expect(text).not.toContain(id);
  for (const x of samples) {
    expect(x.name).toMatch(/^tranche_/);
    for (const value of Object.values(x.labels)) expect(value).not.toMatch(UUID);
  }
});

test("/healthz and /readyz answer on the API", async () => {
  await request(s.opsApp).get("/healthz").expect(200, { success: true, status: "ok" });
  const ready = await request(s.opsApp).get("/readyz").expect(200);
  expect(ready.body).toEqual({ success: true, status: "ready", checks: { postgres: { ok: true }, redis: { ok: true }, migrations: { ok: true } } });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test("a worker process serves /metrics, /healthz and /readyz on METRICS_PORT", async () => {
  const port = await freePort();
  const worker = s.spawnWorker({ METRICS_PORT: String(port), HOST: "127.0.0.1" });
  const url = `http://127.0.0.1:${port}`;
  const health = await waitFor("the worker's /healthz", async () => fetch(`${url}/healthz`).then((r) => r.status).catch(() => undefined), 90_000);
  expect(health).toBe(200);
  const ready = await fetch(`${url}/readyz`);
  expect(ready.status).toBe(200);
  expect(await ready.json()).toMatchObject({ status: "ready" });
  const metrics = await fetch(`${url}/metrics`);
  expect(metrics.status).toBe(200);
  const samples = parsePrometheus(await metrics.text());
  expect(samples.some((x) => x.name === "tranche_jobs" && x.labels.queue === "analysis")).toBe(true);
  expect(samples.some((x) => x.name === "tranche_process_resident_memory_bytes")).toBe(true);
  expect((await fetch(`${url}/api/batches`)).status).toBe(404);
  worker.kill("SIGTERM");
  await new Promise((resolve) => worker.once("exit", resolve));
}, 120_000);
