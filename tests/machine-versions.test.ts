// Machine versions: a snapshot stored by machine v1 (tests/fixtures/snapshots) is upgraded on load by the current machine (v3), a v2 one gains usage and budget, the upgrade is recorded in history, and a snapshot from an unknown newer version is refused with 409 incompatible_snapshot and nothing written.
import { readFileSync } from "node:fs";
import path from "node:path";
import request from "supertest";
import type { MachineEvent } from "../src/machines/batch.events";
import { MACHINE_VERSION } from "../src/machines/batch.machine";
import { decide, initialSnapshot, restore, stateName, toStored, type BatchSnapshot } from "../src/machines/batch.transition";
import { SNAPSHOT_MIGRATIONS, upgradeSnapshot } from "../src/machines/batch.versions";
import { createHarness, type Harness } from "./support/harness";
import { replayHistory } from "./support/replay";

const fixture = (name: string) =>
  JSON.parse(readFileSync(path.join(__dirname, "fixtures", "snapshots", name), "utf8")) as Record<string, unknown>;

/** The events that led to v1-analyzing.json when machine v1 stored it. */
function v1AnalyzingEvents(): MachineEvent[] {
  const staged = Array.from({ length: 6 }, (_, i): MachineEvent => ({ type: "DOCUMENT_STAGED", runId: 1, documentId: `d${i}`, from: "running" }));
  return [
    { type: "stage" },
    ...staged,
    { type: "run" },
    { type: "START" },
    { type: "TASK_STARTED", runId: 1, taskId: "t0", from: "running" },
    { type: "TASK_COMPLETED", runId: 1, taskId: "t0", from: "running" },
  ];
}

describe("the migration registry (pure)", () => {
  test("the machine is at v3 and every version below it has a migration", () => {
    expect(MACHINE_VERSION).toBe(3);
    for (let v = 1; v < MACHINE_VERSION; v++) expect(SNAPSHOT_MIGRATIONS.some((m) => m.from === v)).toBe(true);
  });

  test("a v1 snapshot upgraded equals what the current machine makes of the same events", () => {
    const v1 = fixture("v1-analyzing.json");
    expect((v1.context as Record<string, unknown>).window).toBe(4);
    const up = upgradeSnapshot(v1, 1);
    if (!up.ok) throw new Error(up.reason);
    expect(up.steps).toHaveLength(2);
    expect(up.steps[0]).toMatch(/^v1 → v2: /);
    expect(up.steps[1]).toMatch(/^v2 → v3: /);

    let replayed: BatchSnapshot = initialSnapshot({ documents: 6, window: 4, stagingTolerance: 0.1, failureTolerance: 0.1 });
    for (const event of v1AnalyzingEvents()) {
      const d = decide(replayed, event);
      expect(d.accepted).toBe(true);
      replayed = d.snapshot;
    }
    expect(up.snapshot).toEqual(toStored(replayed));
    expect(up.snapshot.context).toMatchObject({ windows: { staging: 4, analysis: 4 } });
    expect(up.snapshot.context).not.toHaveProperty("window");
  });

  test("v2 → v3: a paused v2 snapshot gets no budget, zero usage and a user's pause; it resumes and runs on", () => {
    let v2: BatchSnapshot = initialSnapshot({ documents: 6, window: 4, stagingTolerance: 0.1, failureTolerance: 0.1 });
    for (const event of [...v1AnalyzingEvents(), { type: "pause" } as MachineEvent]) v2 = decide(v2, event).snapshot;
    const stored = toStored(v2);
    const context = { ...(stored.context as Record<string, unknown>) };
    delete context.usage;
    delete context.budget;
    delete context.pauseReason;
    const up = upgradeSnapshot({ ...stored, context }, 2);
    if (!up.ok) throw new Error(up.reason);
    expect(up.steps).toHaveLength(1);
    expect(up.snapshot.context).toMatchObject({
      usage: { requests: 0, inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, costUsd: 0, unpriced: 0 },
      budget: { limitUsd: null, reservedUsd: 0 },
      pauseReason: "user",
    });
    const resumed = decide(restore(up.snapshot), { type: "resume" });
    expect(resumed.accepted).toBe(true);
    expect(resumed.snapshot.context.pauseReason).toBeNull();
    const started = decide(decide(resumed.snapshot, { type: "START" }).snapshot, { type: "TASK_STARTED", runId: 1, taskId: "t1", from: "running", reserveUsd: 0.5 });
    expect(started.accepted).toBe(true);
    expect(started.snapshot.context.budget.reservedUsd).toBe(0.5);
  });

  test("the upgraded snapshot runs on: a completion refills the analysis window", () => {
    const up = upgradeSnapshot(fixture("v1-analyzing.json"), 1);
    if (!up.ok) throw new Error(up.reason);
    const s = restore(up.snapshot);
    expect(stateName(s)).toBe("ANALYZING.running");
    const d = decide(s, { type: "TASK_COMPLETED", runId: 1, taskId: "t1", from: "running" });
    expect(d.accepted).toBe(true);
    expect(d.effects).toEqual([{ type: "dispatchTasks", runId: 1, count: 1 }]);
    expect(d.snapshot.context.tasks).toEqual({ total: 6, pending: 0, running: 4, succeeded: 2, failed: 0, cancelled: 0 });
  });

  test("a current snapshot passes through untouched; newer, invalid or unreachable versions are refused", () => {
    const current = toStored(initialSnapshot({ documents: 1, window: 2, stagingTolerance: 0, failureTolerance: 0 }));
    expect(upgradeSnapshot(current, MACHINE_VERSION)).toEqual({ ok: true, snapshot: current, from: MACHINE_VERSION, to: MACHINE_VERSION, steps: [] });
    const newer = upgradeSnapshot(current, MACHINE_VERSION + 1);
    expect(newer.ok).toBe(false);
    expect(!newer.ok && newer.reason).toMatch(/stored by machine version 4; this install runs version 3/);
    expect(upgradeSnapshot(current, 0).ok).toBe(false);
    expect(upgradeSnapshot(current, 1.5).ok).toBe(false);
    // A registry with a hole (v3 → v4 missing) cannot bring a v1 snapshot to v5.
    const gappy = [...SNAPSHOT_MIGRATIONS, { from: 4, description: "test", up: (s: Record<string, unknown>) => s }];
    const gap = upgradeSnapshot(fixture("v1-saved.json"), 1, 5, gappy);
    expect(!gap.ok && gap.reason).toBe("no migration from machine version 3 to 4");
  });
});

describe("the store upgrades on load and refuses what it cannot read", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(() => h.close());
  const api = () => request(h.app);

  /** A batch of six documents whose row looks exactly as machine v1 left it. */
  async function v1Batch(): Promise<string> {
    const res = await api()
      .post("/api/batches/save")
      .send({
        name: "stored by v1",
        analysis: { instructions: "Summarise.", failure_tolerance: 0.1, staging_tolerance: 0.1 },
        documents: Array.from({ length: 6 }, (_, i) => ({ name: `d${i}.txt`, content: `document ${i}` })),
      })
      .expect(201);
    const id = res.body.batch.id as string;
    await h.db.prisma.batch.update({ where: { id }, data: { snapshot: fixture("v1-saved.json") as object, machineVersion: 1 } });
    return id;
  }

  test("reads upgrade in memory and write nothing; the first change writes the current version and records the upgrade", async () => {
    const id = await v1Batch();
    const read = await api().get(`/api/batches/${id}`).expect(200);
    expect(read.body.batch).toMatchObject({ status: "SAVED", version: 1, allowed_actions: ["stage", "reset", "restage", "delete"] });
    expect(await h.db.prisma.batch.findUniqueOrThrow({ where: { id } })).toMatchObject({ machineVersion: 1, historySeq: 1 });

    const staged = await api().post(`/api/batches/${id}/stage`).expect(200);
    expect(staged.body).toMatchObject({ previous_state: "SAVED", current_state: "STAGING", version: 2 });

    const row = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
    expect(row.machineVersion).toBe(MACHINE_VERSION);
    expect((row.snapshot as { context: Record<string, unknown> }).context).toMatchObject({ windows: { staging: 4, analysis: 4 } });
    expect((row.snapshot as { context: Record<string, unknown> }).context).not.toHaveProperty("window");
    const history = await h.db.prisma.historyEntry.findMany({ where: { batchId: id }, orderBy: { seq: "asc" } });
    expect(history.map((e) => [e.seq, e.outcome, e.eventType, e.version])).toEqual([
      [1, "accepted", "created", 1],
      [2, "upgraded", "MACHINE_UPGRADED", 1],
      [3, "accepted", "stage", 2],
    ]);
    expect(history[1]).toMatchObject({ source: "system", fromState: "SAVED", toState: "SAVED", context: { from_machine_version: 1, to_machine_version: 3 } });
    expect(history[1]!.reason).toMatch(/^v1 → v2: /);

    // The history, replayed through the v2 machine, still reproduces what is stored.
    const replay = await replayHistory(h.db.prisma, id);
    expect(toStored(replay.snapshot)).toEqual(row.snapshot);
    expect(replay.version).toBe(row.version);

    // Upgraded once: the next change records no second upgrade.
    await api().post(`/api/batches/${id}/cancel`).expect(200);
    expect(await h.db.prisma.historyEntry.count({ where: { batchId: id, outcome: "upgraded" } })).toBe(1);
  });

  test("a snapshot from a newer machine answers 409 incompatible_snapshot and nothing changes", async () => {
    const id = await v1Batch();
    await h.db.prisma.batch.update({ where: { id }, data: { machineVersion: MACHINE_VERSION + 1 } });
    const before = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });

    const read = await api().get(`/api/batches/${id}`).expect(409);
    expect(read.body).toMatchObject({ success: false, code: "incompatible_snapshot", machine_version: 4, supported_machine_version: 3 });
    expect(read.body.error).toMatch(/stored by machine version 4/);
    const acted = await api().post(`/api/batches/${id}/stage`).expect(409);
    expect(acted.body.code).toBe("incompatible_snapshot");
    await expect(h.engine.service.canTransition(id, "stage")).rejects.toMatchObject({ code: "incompatible_snapshot" });

    expect(await h.db.prisma.batch.findUniqueOrThrow({ where: { id } })).toEqual(before);
    expect(await h.db.prisma.historyEntry.count({ where: { batchId: id } })).toBe(1);
  });

  test("the batch list shows a batch from a newer machine with its reason, and the others as usual", async () => {
    const readable = await v1Batch();
    const unreadable = await v1Batch();
    await h.db.prisma.batch.update({ where: { id: unreadable }, data: { machineVersion: MACHINE_VERSION + 1 } });

    const list = await api().get("/api/batches?limit=100").expect(200);
    const listed = new Map((list.body.batches as { id: string; snapshot_error?: { error: string } }[]).map((b) => [b.id, b]));
    expect(listed.get(readable)).toMatchObject({ status: "SAVED", allowed_actions: ["stage", "reset", "restage", "delete"] });
    expect(listed.get(readable)).not.toHaveProperty("snapshot_error");
    expect(listed.get(unreadable)).toMatchObject({
      status: "SAVED",
      allowed_actions: [],
      snapshot_error: { code: "incompatible_snapshot", machine_version: MACHINE_VERSION + 1, supported_machine_version: MACHINE_VERSION },
    });
    expect(listed.get(unreadable)?.snapshot_error?.error).toMatch(new RegExp(`stored by machine version ${MACHINE_VERSION + 1}`));
    // Alone, it is still refused.
    await api().get(`/api/batches/${unreadable}`).expect(409);
  });
});
