// A bad submission never poisons its group: twenty innocent submissions and one poisoned one on the same batch, concurrently, leave the poisoned one refused on its own (400, its own history entry) and every other one committed as if it were absent — for text the planner catches (a NUL byte) and for a write PostgreSQL itself refuses (an integer out of range). Accepted answers carry their own versions.
import { ValidationError } from "../src/errors";
import { toStored } from "../src/machines/batch.transition";
import { batchIn, createBatch, runningTasks, stageAll } from "./support/drive";
import { createHarness, type Harness } from "./support/harness";
import { replayHistory } from "./support/replay";

let h: Harness;
beforeAll(async () => {
  h = await createHarness({ maxRunningBatches: 100 });
});
afterAll(() => h.close());

const d = () => ({ service: h.engine.service, prisma: h.db.prisma });

test("a NUL byte in a reason: twenty documents added from three clients, the poisoned stage refused alone", async () => {
  const id = await createBatch(d(), { documents: 2 });
  const clients = [h.engine, h.newEngine(), h.newEngine()];
  const innocent = Array.from({ length: 20 }, (_, i) =>
    clients[i % 3]!.service.addDocuments(id, [{ name: `added-${i}.txt`, mimeType: "text/plain", content: Buffer.from(`added ${i}`) }]),
  );
  const poisoned = h.engine.service.requestStateChange(id, "stage", { reason: "go\u0000now" });
  const [refusal, ...answers] = await Promise.allSettled([poisoned, ...innocent]);

  expect(refusal).toMatchObject({ status: "rejected" });
  const err = (refusal as PromiseRejectedResult).reason as ValidationError;
  expect(err).toBeInstanceOf(ValidationError);
  expect(err.status).toBe(400);
  expect(err.message).toMatch(/^reason: .*cannot be stored/);

  expect(answers.every((a) => a.status === "fulfilled")).toBe(true);
  const versions = answers.map((a) => (a as PromiseFulfilledResult<{ version: number }>).value.version).sort((x, y) => x - y);
  expect(versions).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));

  const batch = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(batch).toMatchObject({ status: "SAVED", version: 21, documentCount: 22 });
  expect(await h.db.prisma.document.count({ where: { batchId: id } })).toBe(22);
  const history = await h.db.prisma.historyEntry.findMany({ where: { batchId: id }, orderBy: { seq: "asc" } });
  expect(history.map((e) => e.seq)).toEqual(history.map((_, i) => i + 1));
  const invalid = history.filter((e) => e.outcome === "invalid");
  expect(invalid).toHaveLength(1);
  expect(invalid[0]).toMatchObject({ eventType: "stage", source: "user", fromState: "SAVED", toState: "SAVED" });
  expect(history.filter((e) => e.eventType === "DOCUMENTS_ADDED" && e.outcome === "accepted")).toHaveLength(20);
  const replayed = await replayHistory(h.db.prisma, id);
  expect(toStored(replayed.snapshot)).toEqual(batch.snapshot);
});

test("a write PostgreSQL refuses: the group is re-applied without the offender, which alone is recorded invalid", async () => {
  const id = await createBatch(d(), { documents: 21, window: 21 });
  await h.engine.service.requestStateChange(id, "stage");
  await stageAll(d(), id);
  await h.engine.service.requestStateChange(id, "run");
  await h.engine.service.requestStateChange(id, "pause");
  const tasks = await runningTasks(h.db.prisma, id);
  expect(tasks).toHaveLength(21);
  const before = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(before.status).toBe("PAUSED");

  // All from one client: the first goes alone, the rest share the next in-process group with the poisoned one.
  const service = h.engine.service;
  const complete = (t: { id: string }) => service.report({ type: "TASK_COMPLETED", batchId: id, runId: 1, taskId: t.id, output: { fine: true } });
  const first = complete(tasks[0]!);
  // A queue position past PostgreSQL's integer range: the planner cannot know, the statement fails.
  const poisoned = service.requestStateChange(id, "resume", { position: 2 ** 40 });
  const innocent = [first, ...tasks.slice(1, 20).map(complete)];
  const [refusal, ...rest] = await Promise.allSettled([poisoned, ...innocent]);

  expect(refusal).toMatchObject({ status: "rejected", reason: { status: 400, code: "validation_failed" } });
  expect(rest).toHaveLength(20);
  expect(rest.map((r) => (r as PromiseFulfilledResult<{ outcome: string }>).value.outcome)).toEqual(Array(20).fill("accepted"));

  // As if the resume were absent: still paused, twenty tasks counted, one still in flight.
  const after = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(after).toMatchObject({ status: "PAUSED", succeeded: 20, running: 1, version: before.version + 20 });
  const invalid = await h.db.prisma.historyEntry.findMany({ where: { batchId: id, outcome: "invalid" } });
  expect(invalid).toHaveLength(1);
  expect(invalid[0]).toMatchObject({ eventType: "resume", fromState: "PAUSED", toState: "PAUSED" });
  const replayed = await replayHistory(h.db.prisma, id);
  expect(replayed.version).toBe(after.version);
  expect(toStored(replayed.snapshot)).toEqual(after.snapshot);
});

test("concurrent actions over HTTP: each accepted answer names its own version and state", async () => {
  const id = await batchIn(d(), "ANALYZING.running");
  const { default: request } = await import("supertest");
  const answers = await Promise.all(
    Array.from({ length: 10 }, (_, i) => request(h.app).post(`/api/batches/${id}/${i % 2 ? "resume" : "pause"}`).send({})),
  );
  const accepted = answers.filter((a) => a.status === 200).map((a) => a.body as { version: number; current_state: string });
  expect(accepted.length).toBeGreaterThan(1);
  const versions = accepted.map((a) => a.version);
  expect(new Set(versions).size).toBe(versions.length);
  const history = await h.db.prisma.historyEntry.findMany({ where: { batchId: id, outcome: "accepted", version: { in: versions } } });
  for (const a of accepted) {
    const entry = history.find((e) => e.version === a.version)!;
    expect(entry.toState.split(".")[0]).toBe(a.current_state);
  }
});
