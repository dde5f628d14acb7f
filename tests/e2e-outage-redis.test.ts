// Redis killed mid-batch and started again empty (a private redis-server): meanwhile actions are still accepted at once (the outbox holds the work) and health says Redis is missing; once it is back the reconciler refills it and the batch completes with every task counted once.
import { act, uploadBatch } from "./support/e2e";
import { expectBatchInvariants } from "./support/invariants";
import { startRestartableRedis, type RestartableRedis } from "./support/redis-server";
import { serve, type Served } from "./support/served";
import { createSystem, waitFor, waitForStatus, type TestSystem } from "./support/system";

const N = 24;
let redis: RestartableRedis;
let s: TestSystem;
let served: Served;

beforeAll(async () => {
  redis = await startRestartableRedis();
  s = await createSystem({ fake: { latencyMs: 150 }, env: { REDIS_URL: redis.url } });
  served = await serve(s);
}, 60_000);
afterAll(async () => {
  // Closing needs Redis (the workers finish their jobs there), whatever the test left.
  await redis?.start();
  await served?.close();
  await s?.close();
  await redis?.close();
});

async function timed(path: string, init?: RequestInit) {
  const started = performance.now();
  const res = await fetch(`${served.url}${path}`, { ...init, headers: { "content-type": "application/json" } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, ms: performance.now() - started };
}

test("actions are accepted while Redis is gone, and the batch completes once it is back, empty", async () => {
  const id = await uploadBatch(s, { texts: N });
  await act(s, id, "stage");
  await waitForStatus(s, id, "STAGED", 60_000);
  await act(s, id, "run");
  await waitFor("a few tasks to finish", async () => (await s.db.prisma.batch.findUniqueOrThrow({ where: { id } })).succeeded >= 4);
  expect((await timed("/api/health")).body).toMatchObject({ status: "ok", redis: "ok" });

  await redis.kill();
  await waitFor("the process to notice", async () => !s.background.redisReady());
  const health = await timed("/api/health");
  expect(health).toMatchObject({ status: 200, body: { status: "degraded", database: "ok", redis: "missing" } });

  const pause = await timed(`/api/batches/${id}/pause`, { method: "POST", body: "{}" });
  expect([pause.status, pause.body.current_state]).toEqual([200, "PAUSED"]);
  const resume = await timed(`/api/batches/${id}/resume`, { method: "POST", body: "{}" });
  expect([resume.status, resume.body.current_state]).toEqual([200, "ANALYZING"]);
  const read = await timed(`/api/batches/${id}`);
  expect(read.status).toBe(200);
  const slowest = Math.max(pause.ms, resume.ms, read.ms, health.ms);
  expect(slowest).toBeLessThan(5000);
  // The work those actions asked for waits in the outbox.
  await new Promise((r) => setTimeout(r, 1000));
  expect(await s.db.prisma.effect.count({ where: { batchId: id, status: "pending" } })).toBeGreaterThan(0);

  await redis.start();
  const upAt = Date.now();
  await waitFor("health to see Redis again", async () => (await timed("/api/health")).body.redis === "ok", 30_000);
  await waitForStatus(s, id, "COMPLETED", 90_000);
  process.stdout.write(
    `redis outage: pause ${pause.ms.toFixed(0)} ms, resume ${resume.ms.toFixed(0)} ms, read ${read.ms.toFixed(0)} ms while down; batch completed ${Date.now() - upAt} ms after Redis came back empty\n`,
  );
  const b = await s.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(b).toMatchObject({ status: "COMPLETED", total: N, succeeded: N, failed: 0, pending: 0, running: 0 });
  await expectBatchInvariants(s.db.prisma, id);
}, 150_000);
