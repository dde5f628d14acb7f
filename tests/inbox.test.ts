// The durable inbox: reports of one batch from three worker processes at once are each counted once, a repeated report is one inbox row, a drainer SIGKILLed inside its commit loses nothing and counts nothing twice (the history still replays to the stored snapshot), and a task whose result waits in the inbox is not started again.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { Client } from "pg";
import { toStored } from "../src/machines/batch.transition";
import { appendInbox } from "../src/store/sql/inbox-append";
import { createBatch, runningTasks, stageAll } from "./support/drive";
import { createHarness, type Harness } from "./support/harness";
import { replayHistory } from "./support/replay";
import { waitFor } from "./support/system";

let h: Harness;
beforeAll(async () => {
  h = await createHarness({ maxRunningBatches: 100 });
});
afterAll(() => h.close());

const d = () => ({ service: h.engine.service, prisma: h.db.prisma });
const CHILD = path.join(__dirname, "support", "store-child.ts");

function child(...args: string[]): { proc: ChildProcess; line: () => Promise<string> } {
  const proc = spawn(process.execPath, ["--import", "tsx", CHILD, ...args], { cwd: path.join(__dirname, ".."), stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: proc.stdout! });
  const waiting: ((l: string) => void)[] = [];
  lines.on("line", (l) => waiting.shift()?.(l));
  return { proc, line: () => new Promise((resolve) => waiting.push(resolve)) };
}
const exited = (proc: ChildProcess) => new Promise<number | null>((resolve) => (proc.exitCode !== null ? resolve(proc.exitCode) : proc.once("exit", resolve)));

/** A batch analysing `n` tasks at once. */
async function analysing(n: number) {
  const id = await createBatch(d(), { documents: n, window: n });
  await h.engine.service.requestStateChange(id, "stage");
  await stageAll(d(), id);
  await h.engine.service.requestStateChange(id, "run");
  return id;
}

test("three worker processes report every task of one batch at once: each task is counted once", async () => {
  const id = await analysing(40);
  const workers = [child("deliver", h.db.url, id), child("deliver", h.db.url, id), child("deliver", h.db.url, id)];
  await Promise.all(workers.map((w) => w.line()));
  expect(await Promise.all(workers.map((w) => exited(w.proc)))).toEqual([0, 0, 0]);

  const batch = await waitFor("the batch to complete", async () => {
    const b = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
    return b.status === "COMPLETED" ? b : undefined;
  }, 15_000);
  expect(batch).toMatchObject({ total: 40, succeeded: 40, failed: 0 });
  const completions = await h.db.prisma.historyEntry.groupBy({ by: ["outcome"], where: { batchId: id, eventType: "TASK_COMPLETED" }, _count: true });
  expect(completions.find((c) => c.outcome === "accepted")?._count).toBe(40);
  // Repeats that reached the inbox after the first was applied were judged, and ignored.
  for (const c of completions) expect(["accepted", "ignored"]).toContain(c.outcome);
  expect(await h.db.prisma.inboxEntry.count({ where: { batchId: id } })).toBe(0);
  const replayed = await replayHistory(h.db.prisma, id);
  expect(toStored(replayed.snapshot)).toEqual(batch.snapshot);
});

test("a report delivered twice while it waits is one inbox row, and counts once", async () => {
  const id = await analysing(2);
  const [task] = await runningTasks(h.db.prisma, id);
  // Hold this batch's drain lock, as a drainer elsewhere would, so the reports stay in the inbox.
  const holder = new Client({ connectionString: h.db.url });
  await holder.connect();
  await holder.query("SELECT pg_advisory_lock(727100003, hashtext($1))", [id]);
  const report = { type: "TASK_COMPLETED" as const, batchId: id, runId: 1, taskId: task!.id, output: { first: true } };
  await Promise.all([h.engine.service.deliver(report), h.engine.service.deliver({ ...report, output: { first: false } })]);
  const other = h.newEngine();
  await other.service.deliver(report);
  expect(await h.db.prisma.inboxEntry.count({ where: { batchId: id } })).toBe(1);
  expect((await h.db.prisma.batch.findUniqueOrThrow({ where: { id } })).succeeded).toBe(0);

  await holder.query("SELECT pg_advisory_unlock(727100003, hashtext($1))", [id]);
  await holder.end();
  // Whichever process drains first (the other engine's drain may still be trying), it is applied once.
  await h.engine.service.sweepInbox();
  await other.store.inbox.close();
  expect(await h.db.prisma.inboxEntry.count({ where: { batchId: id } })).toBe(0);
  expect(await h.db.prisma.batch.findUniqueOrThrow({ where: { id } })).toMatchObject({ succeeded: 1, running: 1 });
  expect((await h.db.prisma.task.findUniqueOrThrow({ where: { id: task!.id } })).output).toEqual({ first: true });
  expect(await h.db.prisma.historyEntry.count({ where: { batchId: id, eventType: "TASK_COMPLETED" } })).toBe(1);
});

test("a drainer SIGKILLed inside its commit: nothing lost, nothing counted twice", async () => {
  const id = await analysing(6);
  const tasks = await runningTasks(h.db.prisma, id);
  const before = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  // Durable reports that no process has drained yet (appended without kicking a drain).
  await appendInbox(h.engine.store.pool, tasks.map((t) => ({
    report: { type: "TASK_COMPLETED" as const, batchId: id, runId: 1, taskId: t.id, output: { n: t.position } },
    unitKey: t.id,
  })));

  const drainer = child("hang", h.db.url);
  expect(await drainer.line()).toBe("in-commit");
  drainer.proc.kill("SIGKILL");
  await exited(drainer.proc);

  // The killed group left nothing: the reports are still pending, the batch untouched.
  expect(await h.db.prisma.inboxEntry.count({ where: { batchId: id } })).toBe(6);
  const untouched = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(untouched).toMatchObject({ version: before.version, succeeded: 0 });
  expect(await h.db.prisma.historyEntry.count({ where: { batchId: id, eventType: "TASK_COMPLETED" } })).toBe(0);

  // Any other process's sweep picks them up, once (the killed transaction's locks went with it).
  await h.engine.service.sweepInbox();
  await h.newEngine().service.sweepInbox();
  const after = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(after).toMatchObject({ status: "COMPLETED", succeeded: 6, version: before.version + 6 });
  expect(await h.db.prisma.inboxEntry.count({ where: { batchId: id } })).toBe(0);
  expect(await h.db.prisma.historyEntry.count({ where: { batchId: id, eventType: "TASK_COMPLETED", outcome: "accepted" } })).toBe(6);
  const replayed = await replayHistory(h.db.prisma, id);
  expect(replayed.version).toBe(after.version);
  expect(toStored(replayed.snapshot)).toEqual(after.snapshot);
});

test("a job run again after its task reported (its result still in the inbox) does not start the task again", async () => {
  const id = await analysing(2);
  const [task] = await runningTasks(h.db.prisma, id);
  const start = { type: "TASK_STARTED" as const, batchId: id, runId: 1, taskId: task!.id };
  expect((await h.engine.service.report(start)).outcome).toBe("accepted");
  // The first job's result is durable but not applied yet; a second job of the same task asks to start.
  await appendInbox(h.engine.store.pool, [{ report: { type: "TASK_COMPLETED", batchId: id, runId: 1, taskId: task!.id, output: 1 }, unitKey: task!.id }]);
  const again = await h.engine.service.report(start);
  expect(again).toMatchObject({ outcome: "ignored", code: "duplicate" });
  expect((await h.db.prisma.task.findUniqueOrThrow({ where: { id: task!.id } })).attempts).toBe(1);

  await h.engine.service.sweepInbox();
  expect(await h.db.prisma.batch.findUniqueOrThrow({ where: { id } })).toMatchObject({ succeeded: 1, running: 1 });
});

test("a task start's transaction applies the batch's pending inbox reports too, older first, and answers for the start alone", async () => {
  const id = await analysing(4);
  const tasks = await runningTasks(h.db.prisma, id);
  const [first, ...rest] = tasks;
  // Three completions waiting in the inbox (appended without kicking a drain), then a start of the fourth task.
  await appendInbox(h.engine.store.pool, rest.map((t) => ({
    report: { type: "TASK_COMPLETED" as const, batchId: id, runId: 1, taskId: t.id, output: { n: t.position } },
    unitKey: t.id,
  })));
  const start = await h.engine.service.report({ type: "TASK_STARTED", batchId: id, runId: 1, taskId: first!.id, dispatch: first!.dispatches });
  expect(start).toMatchObject({ outcome: "accepted" });
  expect(await h.db.prisma.inboxEntry.count({ where: { batchId: id } })).toBe(0);
  const batch = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(batch).toMatchObject({ succeeded: 3, running: 1 });
  // Applied in the order they arrived, the completions then the start, in one transaction (one `now()`).
  const history = await h.db.prisma.historyEntry.findMany({ where: { batchId: id, eventType: { in: ["TASK_COMPLETED", "TASK_STARTED"] } }, orderBy: { seq: "asc" } });
  expect(history.map((e) => e.eventType)).toEqual(["TASK_COMPLETED", "TASK_COMPLETED", "TASK_COMPLETED", "TASK_STARTED"]);
  expect(new Set(history.map((e) => e.createdAt.getTime())).size).toBe(1);
});
