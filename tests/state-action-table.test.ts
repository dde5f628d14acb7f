// Every state of SPEC §2 against every action of SPEC §3, through the batch service on real PostgreSQL: allowed exactly as the table says, and a refusal changes nothing but the history.
import { ACTIONS, type Action } from "../src/machines/batch.events";
import { TransitionRefusedError } from "../src/errors";
import { batchIn, type Target } from "./support/drive";
import { createHarness, type Harness } from "./support/harness";

const SPEC_ACTIONS = ACTIONS.filter((a) => a !== "delete");

/** SPEC §3, row by row: the actions each state allows (retry-failed needs failed tasks). */
const ALLOWED: Record<Target, Action[]> = {
  SAVED: ["stage", "reset", "restage"],
  STAGING: ["cancel"],
  STAGED: ["run", "reset"],
  "ANALYZING.queued": ["pause", "cancel"],
  "ANALYZING.running": ["pause", "cancel"],
  PAUSED: ["resume", "cancel"],
  COMPLETED: ["reset", "restage", "rerun"],
  COMPLETED_WITH_FAILURES: ["reset", "restage", "rerun", "retry-failed"],
  FAILED: ["reset", "restage", "rerun", "retry-failed"],
  FAILED_STAGING: ["reset", "restage", "rerun"],
  CANCELLED: ["reset", "restage", "rerun"],
};

/** Where an accepted action leads (before any queue promotion). */
const TARGET_STATE: Record<Action, string[]> = {
  stage: ["STAGING"],
  run: ["ANALYZING"],
  pause: ["PAUSED"],
  resume: ["ANALYZING"],
  cancel: ["CANCELLED"],
  reset: ["SAVED"],
  restage: ["STAGING"],
  rerun: ["STAGING"],
  "retry-failed": ["ANALYZING"],
  delete: ["DELETED"],
};

const rows = (Object.keys(ALLOWED) as Target[]).flatMap((state) =>
  SPEC_ACTIONS.map((action) => [state, action, ALLOWED[state].includes(action)] as const),
);

let h: Harness;
let queuedEngine: ReturnType<Harness["newEngine"]>;

beforeAll(async () => {
  h = await createHarness({ maxRunningBatches: 1000 });
  queuedEngine = h.newEngine({ maxRunningBatches: 0 });
});
afterAll(() => h.close());

test.each(rows)("%s × %s → allowed: %s", async (state, action, allowed) => {
  const engine = state === "ANALYZING.queued" ? queuedEngine : h.engine;
  const d = { service: engine.service, prisma: h.db.prisma };
  const id = await batchIn(d, state);
  const before = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(`${before.status}${before.substate ? `.${before.substate}` : ""}`).toBe(state === "COMPLETED_WITH_FAILURES" ? "COMPLETED" : state);
  const historyBefore = await h.db.prisma.historyEntry.count({ where: { batchId: id } });

  if (allowed) {
    const result = await engine.service.requestStateChange(id, action, { reason: "table test" });
    expect(TARGET_STATE[action]).toContain(result.currentState.split(".")[0]);
    const after = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
    expect(after.version).toBeGreaterThanOrEqual(before.version + 1);
    const last = await h.db.prisma.historyEntry.findFirstOrThrow({ where: { batchId: id, eventType: action } , orderBy: { seq: "desc" } });
    expect(last).toMatchObject({ outcome: "accepted", version: before.version + 1, reason: "table test" });
  } else {
    const refusal = engine.service.requestStateChange(id, action);
    await expect(refusal).rejects.toBeInstanceOf(TransitionRefusedError);
    await expect(refusal).rejects.toMatchObject({
      status: 409,
      standing: { current_state: before.status, version: before.version },
    });
    const after = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
    expect(after.version).toBe(before.version);
    expect(after.snapshot).toEqual(before.snapshot);
    expect(await h.db.prisma.effect.count({ where: { batchId: id, version: { gt: before.version } } })).toBe(0);
    const history = await h.db.prisma.historyEntry.findMany({ where: { batchId: id }, orderBy: { seq: "asc" } });
    expect(history).toHaveLength(historyBefore + 1);
    expect(history.at(-1)).toMatchObject({ outcome: "refused", eventType: action, version: before.version });
  }
});

test("allowed_actions is what the machine accepts, for every state", async () => {
  for (const state of Object.keys(ALLOWED) as Target[]) {
    const engine = state === "ANALYZING.queued" ? queuedEngine : h.engine;
    const id = await batchIn({ service: engine.service, prisma: h.db.prisma }, state);
    const { allowedActions } = await engine.service.canTransition(id, "stage");
    expect(allowedActions.filter((a) => a !== "delete").sort()).toEqual([...ALLOWED[state]].sort());
  }
});
