// Synchronous submissions share set-based groups: a TASK_STARTED and a pause in the same group — the start before the pause is counted, the one after it is refused, so no provider call can follow the accepted pause; one commit, one outbox row, one notification for the whole group.
import type { Commit } from "../src/store";
import { createBatch, runningTasks, stageAll } from "./support/drive";
import { createHarness, type Harness } from "./support/harness";

let h: Harness;
beforeAll(async () => {
  h = await createHarness({ maxRunningBatches: 100 });
});
afterAll(() => h.close());

const d = () => ({ service: h.engine.service, prisma: h.db.prisma });

test("TASK_STARTED, pause, TASK_STARTED in one group", async () => {
  const id = await createBatch(d(), { documents: 3, window: 3 });
  await h.engine.service.requestStateChange(id, "stage");
  await stageAll(d(), id);
  await h.engine.service.requestStateChange(id, "run");
  const [t0, t1, t2] = await runningTasks(h.db.prisma, id);
  const commits: Commit[] = [];
  const unsubscribe = h.engine.onCommit((c) => commits.push(c));
  const service = h.engine.service;
  const start = (t: { id: string }) => service.report({ type: "TASK_STARTED", batchId: id, runId: 1, taskId: t.id });

  // The first goes alone (nothing was in flight); the next three wait for it and go together.
  const results = await Promise.all([start(t0!), start(t1!), service.requestStateChange(id, "pause"), start(t2!)]);
  unsubscribe();

  const [r0, r1, paused, r2] = results as [Awaited<ReturnType<typeof start>>, Awaited<ReturnType<typeof start>>, { version: number; currentState: string }, Awaited<ReturnType<typeof start>>];
  expect(r0.outcome).toBe("accepted");
  expect(r1).toMatchObject({ outcome: "accepted", to: "ANALYZING.running" });
  expect(paused).toMatchObject({ currentState: "PAUSED", version: r1.version + 1 });
  expect(r2).toMatchObject({ outcome: "ignored", version: paused.version });
  expect(commits.map((c) => c.groupSize)).toEqual([1, 3]);
  expect(commits[1]!.transitions.map((t) => t.event)).toEqual(["TASK_STARTED", "pause"]);
  expect(commits[1]!.outboxIds).toHaveLength(1);

  const attempts = await h.db.prisma.task.findMany({ where: { batchId: id }, orderBy: { id: "asc" }, select: { attempts: true } });
  expect(attempts.map((a) => a.attempts)).toEqual([1, 1, 0]);
  const outbox = await h.db.prisma.effect.findUniqueOrThrow({ where: { id: BigInt(commits[1]!.outboxIds[0]!) } });
  expect(outbox.payload).toEqual({ batchId: id, items: [{ type: "withdrawJobs", kind: "analysis", runId: 1 }] });
});
