/** Replays a batch's recorded history through the pure machine, checking each step on the way. */
import type { PrismaClient } from "../../src/db";
import type { BatchInput } from "../../src/machines/batch.machine";
import { machineEventSchema } from "../../src/machines/batch.events";
import { decide, initialSnapshot, stateName, type BatchSnapshot } from "../../src/machines/batch.transition";

/**
 * Starts from the `created` entry's input and applies every accepted entry in order. Fails the
 * test when an accepted entry is refused by the machine, leads somewhere else than recorded,
 * or is not exactly one version above the previous accepted one, or when a refused entry
 * changed the version. Returns the final snapshot and version.
 */
export async function replayHistory(prisma: PrismaClient, batchId: string): Promise<{ snapshot: BatchSnapshot; version: number }> {
  const [created, ...rest] = await prisma.historyEntry.findMany({ where: { batchId }, orderBy: { seq: "asc" } });
  expect(created?.eventType).toBe("created");
  let snapshot = initialSnapshot((created!.event as unknown as { input: BatchInput }).input);
  let version = created!.version;
  for (const entry of rest) {
    if (entry.outcome !== "accepted") {
      expect(entry.version).toBe(version);
      continue;
    }
    const decision = decide(snapshot, machineEventSchema.parse(entry.event));
    expect(decision.accepted).toBe(true);
    expect(stateName(snapshot)).toBe(entry.fromState);
    expect(stateName(decision.snapshot)).toBe(entry.toState);
    expect(entry.version).toBe(++version);
    const c = decision.snapshot.context.tasks;
    expect(c.pending + c.running + c.succeeded + c.failed + c.cancelled).toBe(c.total);
    snapshot = decision.snapshot;
  }
  return { snapshot, version };
}
