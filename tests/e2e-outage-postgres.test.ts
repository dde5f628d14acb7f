// PostgreSQL crashes (pg_ctl -m immediate stop) mid-batch on a private cluster and comes back: meanwhile the API answers 503 `unavailable` with Retry-After at once, workers wait instead of failing work, and afterwards everything resumes by itself — the batch completes with every task counted once and no provider call repeated, and the live stream delivers again.
import { act, documentOf, uploadBatch } from "./support/e2e";
import { expectBatchInvariants } from "./support/invariants";
import { createDatabaseOn, startPrivatePostgres, type PrivatePostgres } from "./support/pg-server";
import { openEvents, serve, type Served } from "./support/served";
import { createSystem, waitFor, waitForStatus, type TestSystem } from "./support/system";

const N = 24;
let pg: PrivatePostgres;
let s: TestSystem;
let served: Served;

beforeAll(async () => {
  pg = await startPrivatePostgres();
  s = await createSystem({ database: await createDatabaseOn(pg), fake: { latencyMs: 150 } });
  served = await serve(s);
}, 60_000);
afterAll(async () => {
  await served?.close();
  await s?.close();
  await pg?.close();
});

async function timed(path: string, init?: RequestInit) {
  const started = performance.now();
  const res = await fetch(`${served.url}${path}`, { ...init, headers: { "content-type": "application/json", ...init?.headers } });
  const body = (await res.json()) as Record<string, unknown>;
  return { status: res.status, body, retryAfter: res.headers.get("retry-after"), ms: performance.now() - started };
}

test("503 while it is down, then the batch completes by itself with every task once", async () => {
  const id = await uploadBatch(s, { texts: N });
  await act(s, id, "stage");
  await waitForStatus(s, id, "STAGED", 60_000);
  await act(s, id, "run");
  await waitFor("a few tasks to finish", async () => (await s.db.prisma.batch.findUniqueOrThrow({ where: { id } })).succeeded >= 4);
  const events = await openEvents(served.url);
  expect((await timed("/api/health")).status).toBe(200);

  await pg.crash();
  const downAt = Date.now();
  const answers: Awaited<ReturnType<typeof timed>>[] = [];
  while (Date.now() - downAt < 3000) {
    answers.push(await timed(`/api/batches/${id}`));
    answers.push(await timed(`/api/batches/${id}/pause`, { method: "POST", body: "{}" }));
    answers.push(await timed("/api/health"));
    answers.push(await timed("/api/batches"));
  }
  for (const a of answers) {
    expect([a.status, a.body.code]).toEqual([503, "unavailable"]);
    expect(a.retryAfter).toMatch(/^\d+$/);
  }
  const slowest = Math.max(...answers.map((a) => a.ms));
  expect(slowest).toBeLessThan(5000);
  // Nothing was failed for want of a database: the workers waited.
  const failedJobs = await s.background.queues.analysis.getJobCounts("failed");
  expect(failedJobs.failed).toBe(0);

  await pg.start();
  const upAt = Date.now();
  await waitFor("the API to answer again", async () => (await timed(`/api/batches/${id}`)).status === 200, 30_000);
  const recoveredMs = Date.now() - upAt;
  await waitForStatus(s, id, "COMPLETED", 90_000);
  process.stdout.write(
    `postgres outage: ${answers.length} answers while down, all 503, slowest ${slowest.toFixed(0)} ms, median ${median(answers.map((a) => a.ms)).toFixed(1)} ms; API back ${recoveredMs} ms after restart, batch completed ${Date.now() - upAt} ms after restart\n`,
  );

  const b = await s.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(b).toMatchObject({ status: "COMPLETED", total: N, succeeded: N, failed: 0, pending: 0, running: 0 });
  await expectBatchInvariants(s.db.prisma, id);
  // No provider call was repeated for a task whose answer could not be saved during the outage.
  const calls = new Map<string, number>();
  for (const r of s.fake.requests) calls.set(documentOf(r.body), (calls.get(documentOf(r.body)) ?? 0) + 1);
  expect(calls.size).toBe(N);
  expect([...calls.values()].every((n) => n === 1)).toBe(true);
  // The live stream listens again: the changes made after the restart reached the open stream.
  await waitFor("the stream to deliver the completion", async () => events.received.some((e) => e.batch_id === id && e.status === "COMPLETED"));
  expect(events.received.filter((e) => e.receivedAt > upAt).length).toBeGreaterThan(0);
  await events.close();
}, 150_000);

function median(xs: number[]) {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}
