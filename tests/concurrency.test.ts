// Many conflicting actions on one batch at once, from independent clients (separate PrismaClients, as separate processes have): every request gets a definite answer, history is a valid path through the machine, versions rise by exactly one per accepted change and counters add up.
import { TransitionRefusedError } from "../src/errors";
import type { Action } from "../src/machines/batch.events";
import { toStored } from "../src/machines/batch.transition";
import { batchIn, runningTasks } from "./support/drive";
import { createHarness, type Harness } from "./support/harness";
import { replayHistory } from "./support/replay";

let h: Harness;
beforeAll(async () => {
  h = await createHarness({ maxRunningBatches: 100 });
});
afterAll(() => h.close());

const sum = (b: { pending: number; running: number; succeeded: number; failed: number; cancelled: number }) =>
  b.pending + b.running + b.succeeded + b.failed + b.cancelled;

test("60 concurrent pause/resume/cancel requests and task reports through 4 clients", async () => {
  const id = await batchIn({ service: h.engine.service, prisma: h.db.prisma }, "ANALYZING.running");
  const clients = Array.from({ length: 4 }, () => h.newEngine());
  const tasks = await runningTasks(h.db.prisma, id);
  const actions: Action[] = ["pause", "resume", "cancel", "pause", "resume"];
  const requests = Array.from({ length: 60 }, (_, i) => {
    const client = clients[i % clients.length]!;
    const action = i === 45 ? "cancel" : actions[i % (i < 40 ? 2 : actions.length)]!;
    return client.service.requestStateChange(id, action, { reason: `request ${i}` }).then(
      (r) => ({ i, action, outcome: "accepted" as const, version: r.version }),
      (err: unknown) => {
        if (err instanceof TransitionRefusedError) return { i, action, outcome: "refused" as const, version: err.standing.version };
        throw err;
      },
    );
  });
  const reports = tasks.map((t, i) =>
    clients[i % clients.length]!.service.report({ type: "TASK_COMPLETED", batchId: id, runId: 1, taskId: t.id, output: i }),
  );
  const answers = await Promise.all(requests);
  await Promise.all(reports);

  expect(answers).toHaveLength(60);
  const accepted = answers.filter((a) => a.outcome === "accepted");
  expect(accepted.length).toBeGreaterThan(0);
  expect(answers.some((a) => a.outcome === "refused")).toBe(true);

  const batch = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(batch.total).toBe(sum(batch));
  expect(batch.status).toBe("CANCELLED");

  const history = await h.db.prisma.historyEntry.findMany({ where: { batchId: id }, orderBy: { seq: "asc" } });
  // Every request left exactly one entry (refusals explain themselves in `reason` and keep the request's own in context); seq has no gaps.
  const requestReason = (e: { context: unknown }) => (e.context as { reason?: string } | null)?.reason ?? "";
  expect(history.filter((e) => /^request \d+$/.test(requestReason(e)))).toHaveLength(60);
  expect(history.map((e) => e.seq)).toEqual(history.map((_, i) => i + 1));

  // Replaying the accepted entries is a valid path that ends in the stored snapshot and version.
  const replayed = await replayHistory(h.db.prisma, id);
  expect(replayed.version).toBe(batch.version);
  expect(toStored(replayed.snapshot)).toEqual(batch.snapshot);

  // Each caller's answer names the version its accepted change produced, and no two share one.
  const versions = accepted.map((a) => a.version);
  expect(new Set(versions).size).toBe(versions.length);
});

test("concurrent requests with a stale If-Match: exactly one wins, the rest get 412", async () => {
  const id = await batchIn({ service: h.engine.service, prisma: h.db.prisma }, "ANALYZING.running");
  const { version } = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  const clients = Array.from({ length: 3 }, () => h.newEngine());
  const results = await Promise.allSettled(
    Array.from({ length: 12 }, (_, i) => clients[i % 3]!.service.requestStateChange(id, i % 2 ? "pause" : "cancel", { expectedVersion: version })),
  );
  const ok = results.filter((r) => r.status === "fulfilled");
  expect(ok).toHaveLength(1);
  for (const r of results) {
    if (r.status === "rejected") expect(r.reason).toMatchObject({ status: 412, code: "version_conflict" });
  }
  const after = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(after.version).toBe(version + 1);
  expect(await h.db.prisma.historyEntry.count({ where: { batchId: id, outcome: "version_conflict" } })).toBe(11);
});
