// Crashes and lost Redis: a worker process killed with SIGKILL mid-batch, and a Redis that loses all its data mid-batch (FLUSHALL on a private redis-server); either way the batch completes with every task counted exactly once.
import { act, uploadBatch } from "./support/e2e";
import { startPrivateRedis } from "./support/redis-server";
import { createSystem, waitFor, waitForStatus, type TestSystem } from "./support/system";

async function countedOnce(s: TestSystem, batchId: string, n: number) {
  const b = await s.db.prisma.batch.findUniqueOrThrow({ where: { id: batchId } });
  expect(b).toMatchObject({ status: "COMPLETED", total: n, succeeded: n, failed: 0, pending: 0, running: 0 });
  expect(await s.db.prisma.historyEntry.count({ where: { batchId, eventType: "TASK_COMPLETED", outcome: "accepted" } })).toBe(n);
  expect(await s.db.prisma.task.count({ where: { batchId, status: "succeeded" } })).toBe(n);
}

describe("a worker process killed with SIGKILL", () => {
  let s: TestSystem;
  beforeAll(async () => {
    s = await createSystem({ workers: false, fake: { latencyMs: 400 } });
  });
  afterAll(() => s.close());

  test("the batch still completes and every task is counted once", async () => {
    const first = s.spawnWorker();
    const id = await uploadBatch(s, { texts: 10 });
    await act(s, id, "stage");
    await waitForStatus(s, id, "STAGED", 60_000);
    await act(s, id, "run");
    await s.fake.waitForRequests(3);
    const inFlight = await s.db.prisma.task.count({ where: { batchId: id, status: "running", attempts: { gt: 0 } } });
    expect(inFlight).toBeGreaterThan(0);
    first.kill("SIGKILL");
    await new Promise((r) => first.once("exit", r));
    expect(() => process.kill(first.pid!, 0)).toThrow();
    s.spawnWorker();
    await waitForStatus(s, id, "COMPLETED", 90_000);
    await countedOnce(s, id, 10);
    // The tasks the dead worker had started were started again, and still counted once.
    expect(await s.db.prisma.task.count({ where: { batchId: id, attempts: { gt: 1 } } })).toBeGreaterThan(0);
  }, 120_000);
});

describe("Redis loses all its data mid-batch", () => {
  let s: TestSystem;
  let redis: Awaited<ReturnType<typeof startPrivateRedis>>;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    // No periodic reconcile: the test runs the one that must repair the loss itself.
    s = await createSystem({ fake: { latencyMs: 200 }, env: { REDIS_URL: redis.url, RECONCILE_INTERVAL_MS: "600000" } });
  });
  afterAll(async () => {
    await s.close();
    await redis.close();
  });

  test("the reconciler re-enqueues what PostgreSQL says is dispatched and the batch completes", async () => {
    const id = await uploadBatch(s, { texts: 10 });
    await act(s, id, "stage");
    await waitForStatus(s, id, "STAGED");
    await act(s, id, "run");
    await s.fake.waitForRequests(3);
    const { Redis } = await import("ioredis");
    const admin = new Redis(redis.url);
    await admin.flushall();
    expect(await admin.dbsize()).toBeLessThan(5);
    await admin.quit();
    // Tasks that were in flight still report; whatever PostgreSQL still calls dispatched is lost from Redis.
    await waitFor("the batch to stall with dispatched work Redis no longer holds", async () => {
      const b = await s.db.prisma.batch.findUniqueOrThrow({ where: { id } });
      const counts = await s.background.queues.analysis.getJobCounts("active", "waiting", "delayed");
      return b.running > 0 && Object.values(counts).every((n) => n === 0);
    });
    // With periodic reconciling off, this call is the only thing that can unstall the batch.
    const { requeued } = await s.background.reconciler.reconcile();
    expect(requeued).toBeGreaterThan(0);
    await waitForStatus(s, id, "COMPLETED", 60_000);
    await countedOnce(s, id, 10);
  }, 90_000);
});
