// The fast tier: (state, submissions) → (state, results, writes) through the pure planner, no database: what each group decides, how writes merge by kind, that a refused or poisoned submission changes nothing, and that every accepted result carries its own version.
import type { WorkerReport } from "../src/machines/batch.events";
import { decide, initialSnapshot, stateName, type BatchSnapshot } from "../src/machines/batch.transition";
import { mayChangeQueue, planGroup, type UnitRow, type Write } from "../src/store/plan";
import type { Submission } from "../src/store/types";

const B = "00000000-0000-4000-8000-000000000000";
const doc = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`;
const task = (i: number) => `${B}-r1-${doc(i)}`;

function snapshotIn(state: "SAVED" | "STAGING" | "ANALYZING.running" | "PAUSED", documents = 6, window = 2): BatchSnapshot {
  let s = initialSnapshot({ documents, window, stagingTolerance: 0, failureTolerance: 0 });
  if (state === "SAVED") return s;
  s = decide(s, { type: "stage" }).snapshot;
  if (state === "STAGING") return s;
  // Stage every document (the machine refills the window as each settles).
  for (let i = 0; i < documents; i++) s = decide(s, { type: "DOCUMENT_STAGED", runId: 1, documentId: doc(i), from: "running" }).snapshot;
  s = decide(s, { type: "run" }).snapshot;
  s = decide(s, { type: "START" }).snapshot;
  if (state === "ANALYZING.running") return s;
  return decide(s, { type: "pause" }).snapshot;
}

const units = (docs: [number, UnitRow][] = [], tasks: [number, UnitRow][] = []) => ({
  documents: new Map(docs.map(([i, r]) => [doc(i), r])),
  tasks: new Map(tasks.map(([i, r]) => [task(i), r])),
});
const running: UnitRow = { runId: 1, status: "running" };
const report = (r: WorkerReport): Submission => ({ kind: "report", report: r });
const user = (action: "stage" | "pause" | "resume" | "cancel" | "run", extra: Partial<Extract<Submission, { kind: "action" }>> = {}): Submission => ({
  kind: "action", action, source: "user", ...extra,
});
const plan = (s: BatchSnapshot, subs: Submission[], u = units()) => planGroup(s, 10, 20, subs, u, { newId: () => "new-id" });
const kinds = (writes: Write[]) => writes.map((w) => (w.type === "dispatch" ? `dispatch ${w.kind} ${w.count}` : w.type));

test.each([
  ["SAVED", [user("stage")], "STAGING", ["resetOutput", "beginStaging", "dispatch staging 2"]],
  ["SAVED", [user("pause")], "SAVED", []],
  ["STAGING", [user("cancel")], "CANCELLED", ["cancelPending", "withdrawJobs"]],
  ["ANALYZING.running", [user("pause")], "PAUSED", ["withdrawJobs"]],
  ["PAUSED", [user("resume")], "ANALYZING.queued", []],
  ["PAUSED", [user("run")], "PAUSED", []],
] as const)("%s + %j → %s, writes %j", (state, subs, to, writes) => {
  const p = plan(snapshotIn(state), [...subs]);
  expect(stateName(p.snapshot)).toBe(to);
  expect(kinds(p.writes)).toEqual(writes);
  expect(p.history).toHaveLength(subs.length);
});

test("reports of one group merge into one settle and one dispatch, and a duplicate in the same group is ignored", () => {
  const s = snapshotIn("STAGING", 6, 2);
  const staged = (i: number) => report({ type: "DOCUMENT_STAGED", batchId: B, runId: 1, documentId: doc(i), text: `t${i}`, chunks: [], tokenCount: 1, textSha256: "0".repeat(64) });
  const p = plan(s, [staged(0), staged(1), staged(0)], units([[0, running], [1, running]]));
  expect(p.results.map((r) => r.outcome)).toEqual(["accepted", "accepted", "ignored"]);
  expect(p.results[2]).toMatchObject({ code: "duplicate", reason: "already succeeded (duplicate report)" });
  expect(kinds(p.writes)).toEqual(["settleDocuments", "dispatch staging 2"]);
  const settle = p.writes[0] as Extract<Write, { type: "settleDocuments" }>;
  expect([...settle.rows.keys()]).toEqual([doc(0), doc(1)]);
  expect(settle.rows.get(doc(1))).toMatchObject({ status: "succeeded", text: "t1" });
  expect(p.snapshot.context.staging).toMatchObject({ succeeded: 2, running: 2, pending: 2 });
});

test("a report of another run, or of no unit of this batch, is ignored with its own code", () => {
  const s = snapshotIn("STAGING");
  const p = plan(s, [
    report({ type: "DOCUMENT_STAGE_FAILED", batchId: B, runId: 0, documentId: doc(0), error: "late" }),
    report({ type: "DOCUMENT_STAGE_FAILED", batchId: B, runId: 1, documentId: doc(5), error: "unknown" }),
  ]);
  expect(p.results.map((r) => [r.outcome, r.code])).toEqual([["ignored", "stale_run"], ["ignored", "unknown_unit"]]);
  expect(p.writes).toEqual([]);
  expect(p.version).toBe(10);
  expect(p.seq).toBe(22);
});

test("a TASK_STARTED and a pause in the same group: the start before the pause is counted, the one after is refused", () => {
  const s = snapshotIn("ANALYZING.running");
  const started = (i: number) => report({ type: "TASK_STARTED", batchId: B, runId: 1, taskId: task(i) });
  const p = plan(s, [started(0), user("pause"), started(1)], units([], [[0, running], [1, running]]));
  expect(p.results.map((r) => [r.outcome, r.to])).toEqual([["accepted", "ANALYZING.running"], ["accepted", "PAUSED"], ["ignored", "PAUSED"]]);
  expect(p.writes).toEqual([{ type: "startTasks", ids: [task(0)], reserveUsd: [0] }, { type: "withdrawJobs", kind: "analysis", runId: 1 }]);
});

test("each accepted result carries its own version and state, not the group's last", () => {
  const p = plan(snapshotIn("ANALYZING.running"), [user("pause"), user("resume"), user("pause")]);
  expect(p.results.map((r) => [r.outcome, r.version, r.to])).toEqual([
    ["accepted", 11, "PAUSED"],
    ["accepted", 12, "ANALYZING.queued"],
    ["accepted", 13, "PAUSED"],
  ]);
  expect(p.results[1]!.allowedActions).toEqual(expect.arrayContaining(["pause", "cancel"]));
  expect(p.version).toBe(13);
});

test("a submission carrying a NUL byte is refused on its own; the rest of the group is planned as if it were absent", () => {
  const s = snapshotIn("ANALYZING.running");
  const poisoned = plan(s, [user("pause", { reason: "x\u0000y" }), user("cancel")]);
  const alone = plan(s, [user("cancel")]);
  expect(poisoned.results[0]).toMatchObject({ outcome: "invalid", code: "invalid_input", version: 10 });
  expect(poisoned.results[0]!.reason).toMatch(/^reason: /);
  expect(poisoned.results[1]).toMatchObject({ ...alone.results[0], version: 11 });
  expect(poisoned.snapshot.context).toEqual(alone.snapshot.context);
  expect(poisoned.writes).toEqual(alone.writes);
  // Its history entry is storable: the offending text is cleaned, not kept.
  expect(JSON.stringify(poisoned.history[0]!.context)).not.toContain("\\u0000");
});

test("worker text PostgreSQL cannot store is cleaned, and the report still counts", () => {
  const p = plan(snapshotIn("STAGING"), [
    report({ type: "DOCUMENT_STAGED", batchId: B, runId: 1, documentId: doc(0), text: "a\u0000b\ud800", chunks: [], tokenCount: 1, textSha256: "0".repeat(64) }),
  ], units([[0, running]]));
  expect(p.results[0]!.outcome).toBe("accepted");
  const settle = p.writes[0] as Extract<Write, { type: "settleDocuments" }>;
  expect(settle.rows.get(doc(0))!.text).toBe("ab\ufffd");
});

test("a withdrawal counts only the named units still in flight", () => {
  const s = snapshotIn("ANALYZING.running");
  const p = plan(s, [report({ type: "JOBS_WITHDRAWN", batchId: B, runId: 1, kind: "analysis", ids: [task(0), task(0), task(3)] })], units([], [[0, running], [3, { runId: 1, status: "succeeded" }]]));
  expect(p.results[0]!.outcome).toBe("accepted");
  expect(p.snapshot.context.tasks.running).toBe(s.context.tasks.running);
  expect(p.writes).toEqual([
    { type: "releaseWithdrawn", kind: "analysis", rows: new Map([[task(0), "pending"]]) },
    { type: "dispatch", kind: "analysis", runId: 1, count: 1 },
  ]);
});

test("whether a group needs the queue lock is known before it is planned", () => {
  const s = snapshotIn("ANALYZING.running", 2, 2);
  const done = (i: number) => report({ type: "TASK_COMPLETED", batchId: B, runId: 1, taskId: task(i), output: null });
  expect(mayChangeQueue(s, [done(0)])).toBe(false);
  expect(mayChangeQueue(s, [done(0), done(1)])).toBe(true);
  expect(mayChangeQueue(s, [user("pause")])).toBe(true);
  expect(mayChangeQueue(snapshotIn("STAGING"), [report({ type: "DOCUMENT_STAGE_FAILED", batchId: B, runId: 1, documentId: doc(0), error: "x" })])).toBe(false);
  // And the plan agrees: the run ends, the batch leaves the queue.
  const p = plan(s, [done(0), done(1)], units([], [[0, running], [1, running]]));
  expect(stateName(p.snapshot)).toBe("COMPLETED");
  expect(p.queueChanged).toBe(true);
});

test("a job of an earlier dispatch is refused its start, and its handback releases only units still on its dispatch", () => {
  const s = snapshotIn("ANALYZING.running", 6, 3);
  const onDispatch = (n: number): UnitRow => ({ runId: 1, status: "running", dispatches: n });
  const u = units([], [[0, onDispatch(2)], [1, onDispatch(2)], [2, onDispatch(1)]]);
  const started = (i: number, dispatch: number) => report({ type: "TASK_STARTED", batchId: B, runId: 1, taskId: task(i), dispatch });
  const p = plan(s, [
    started(0, 1),
    started(1, 2),
    report({ type: "JOBS_WITHDRAWN", batchId: B, runId: 1, kind: "analysis", ids: [task(0), task(2)], dispatches: [1, 1] }),
    report({ type: "JOBS_WITHDRAWN", batchId: B, runId: 1, kind: "analysis", ids: [task(0)], dispatches: [1] }),
    report({ type: "JOBS_WITHDRAWN", batchId: B, runId: 1, kind: "analysis", ids: [task(0)], dispatches: [1, 2] }),
  ], u);
  expect(p.results.map((r) => [r.outcome, r.code])).toEqual([
    ["ignored", "stale_dispatch"],
    ["accepted", undefined],
    ["accepted", undefined],
    ["ignored", "stale_dispatch"],
    ["invalid", "invalid_input"],
  ]);
  expect(p.results[0]!.reason).toBe("a job of dispatch 1; the task is on dispatch 2");
  // Only task 2 (on dispatch 1) goes back; task 0's live second job is left alone.
  const release = p.writes.find((w) => w.type === "releaseWithdrawn") as Extract<Write, { type: "releaseWithdrawn" }>;
  expect([...release.rows.keys()]).toEqual([task(2)]);
  expect(p.writes.find((w) => w.type === "startTasks")).toEqual({ type: "startTasks", ids: [task(1)], reserveUsd: [0] });
});
