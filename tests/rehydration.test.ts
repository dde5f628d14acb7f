// Snapshots survive a JSON round trip in every state, the recorded history replayed through the machine reproduces the stored snapshot, and a fresh service instance (new PrismaClient) carries a batch on mid-life.
import { batchMachine } from "../src/machines/batch.machine";
import { decide, initialSnapshot, restore, toStored, type StoredSnapshot } from "../src/machines/batch.transition";
import { batchIn, finishTasks, stageAll, type Target } from "./support/drive";
import { createHarness, type Harness } from "./support/harness";
import { replayHistory } from "./support/replay";

const STATES: Target[] = ["SAVED", "STAGING", "STAGED", "ANALYZING.running", "PAUSED", "COMPLETED", "FAILED", "FAILED_STAGING", "CANCELLED"];

let h: Harness;
beforeAll(async () => {
  h = await createHarness({ maxRunningBatches: 100 });
});
afterAll(() => h.close());

const replay = async (batchId: string) => (await replayHistory(h.db.prisma, batchId)).snapshot;

describe.each(STATES)("%s", (state) => {
  test("round-trips through JSON and behaves the same", async () => {
    const id = await batchIn({ service: h.engine.service, prisma: h.db.prisma }, state);
    const row = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
    const restored = restore(JSON.parse(JSON.stringify(row.snapshot)) as StoredSnapshot);
    expect(toStored(restored)).toEqual(row.snapshot);
    expect(restored.value).toEqual(batchMachine.resolveState(restored).value);
    for (const type of ["stage", "run", "pause", "resume", "cancel", "reset", "restage", "rerun", "retry-failed"] as const) {
      const again = restore(toStored(restored));
      expect(decide(again, { type }).accepted).toBe(restored.can({ type }));
    }
  });

  test("history replayed through the machine reproduces the stored snapshot", async () => {
    const id = await batchIn({ service: h.engine.service, prisma: h.db.prisma }, state);
    const row = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
    const replayed = await replay(id);
    expect(toStored(replayed)).toEqual(row.snapshot);
  });
});

test("a fresh service instance on a new PrismaClient continues a batch mid-life", async () => {
  const d = { service: h.engine.service, prisma: h.db.prisma };
  const id = await batchIn(d, "STAGING");
  const docs = await h.db.prisma.document.findMany({ where: { batchId: id, stageStatus: "running" } });
  const first = docs[0]!;
  await h.engine.service.report({
    type: "DOCUMENT_STAGED", batchId: id, runId: 1, documentId: first.id,
    text: "t", chunks: [], tokenCount: 0, textSha256: "a".repeat(64),
  });

  // A new process: nothing shared with the first but the database.
  const fresh = h.newEngine();
  const freshDriver = { service: fresh.service, prisma: h.db.newClient() };
  await stageAll(freshDriver, id);
  await fresh.service.requestStateChange(id, "run");
  await finishTasks(freshDriver, id);
  const row = await h.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(row.status).toBe("COMPLETED");
  expect(row.succeeded).toBe(2);
  expect(toStored(await replay(id))).toEqual(row.snapshot);
});

test("an initial snapshot round-trips too", () => {
  const s = initialSnapshot({ documents: 3, window: 2, stagingTolerance: 0, failureTolerance: 0 });
  expect(toStored(restore(toStored(s)))).toEqual(toStored(s));
});
