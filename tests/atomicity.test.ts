// A failure injected after every write of a transition but before commit leaves nothing behind: no history row, no effect, no task change, the old snapshot and version.
import { batchIn, runningTasks } from "./support/drive";
import { createHarness, type Harness } from "./support/harness";

let h: Harness;
let failNext = false;
beforeAll(async () => {
  h = await createHarness({
    maxRunningBatches: 100,
    beforeCommit: async () => {
      if (failNext) {
        failNext = false;
        throw new Error("injected crash before commit");
      }
    },
  });
});
afterAll(() => h.close());

async function everything(id: string) {
  const p = h.db.prisma;
  return {
    batch: await p.batch.findUniqueOrThrow({ where: { id } }),
    history: await p.historyEntry.findMany({ where: { batchId: id }, orderBy: { seq: "asc" } }),
    effects: await p.effect.findMany({ where: { batchId: id } }),
    tasks: await p.task.findMany({ where: { batchId: id }, orderBy: { id: "asc" } }),
    documents: await p.document.findMany({ where: { batchId: id }, orderBy: { position: "asc" } }),
  };
}

test.each([
  ["a user action with effects (run)", "STAGED" as const, "run" as const],
  ["a user action that cancels work", "ANALYZING.running" as const, "cancel" as const],
  ["a reset that deletes results", "COMPLETED" as const, "reset" as const],
])("%s", async (_name, state, action) => {
  const id = await batchIn({ service: h.engine.service, prisma: h.db.prisma }, state);
  const before = await everything(id);
  failNext = true;
  await expect(h.engine.service.requestStateChange(id, action)).rejects.toThrow("injected crash before commit");
  expect(await everything(id)).toEqual(before);
  // The same action succeeds afterwards: nothing was left half-done.
  await h.engine.service.requestStateChange(id, action);
  expect((await everything(id)).batch.version).toBeGreaterThan(before.batch.version);
});

test("a worker report", async () => {
  const id = await batchIn({ service: h.engine.service, prisma: h.db.prisma }, "ANALYZING.running");
  const [task] = await runningTasks(h.db.prisma, id);
  const before = await everything(id);
  failNext = true;
  await expect(h.engine.service.handleTaskCompletion({ type: "TASK_COMPLETED", batchId: id, runId: 1, taskId: task!.id, output: 1 })).rejects.toThrow();
  expect(await everything(id)).toEqual(before);
});
