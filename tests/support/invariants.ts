/** The batch invariants a crash or an outage must never break, read in one consistent snapshot of the database. */
import type { PrismaClient } from "../../src/db";
import { toStored } from "../../src/machines/batch.transition";
import { replayHistory } from "./replay";

/**
 * The stored snapshot equals its history replayed through the machine, at the same version;
 * the counters add up and match the task rows of the current run; no task was counted twice.
 */
export async function expectBatchInvariants(prisma: PrismaClient, batchId: string): Promise<void> {
  await prisma.$transaction(
    async (tx) => {
      const db = tx as unknown as PrismaClient;
      const b = await db.batch.findUniqueOrThrow({ where: { id: batchId } });
      const replay = await replayHistory(db, batchId);
      expect(toStored(replay.snapshot)).toEqual(b.snapshot);
      expect(replay.version).toBe(b.version);
      expect(b.pending + b.running + b.succeeded + b.failed + b.cancelled).toBe(b.total);
      const staging = b.stagingProgress as { total: number; pending: number; running: number; succeeded: number; failed: number; cancelled: number };
      expect(staging.pending + staging.running + staging.succeeded + staging.failed + staging.cancelled).toBe(staging.total);
      const rows = await db.task.groupBy({ by: ["status"], where: { batchId, runId: b.runId }, _count: true });
      const byStatus = Object.fromEntries(rows.map((r) => [r.status, r._count]));
      for (const status of ["pending", "running", "succeeded", "failed", "cancelled"] as const) {
        expect([status, byStatus[status] ?? 0]).toEqual([status, b[status]]);
      }
      // Every accepted report of the current run names a different task, and there is one per settled task.
      const reports = await db.$queryRaw<{ task_id: string; n: number }[]>`
        SELECT event->>'taskId' AS task_id, count(*)::int AS n FROM history
        WHERE batch_id = ${batchId}::uuid AND outcome = 'accepted' AND event_type IN ('TASK_COMPLETED', 'TASK_FAILED')
          AND (event->>'runId')::int = ${b.runId}
        GROUP BY 1`;
      expect(reports.filter((r) => r.n > 1)).toEqual([]);
      expect(reports.length).toBe(b.succeeded + b.failed);
    },
    // A loaded machine may take a while to read a long history; the default 5 s is for requests.
    { isolationLevel: "RepeatableRead", timeout: 60_000, maxWait: 30_000 },
  );
}
