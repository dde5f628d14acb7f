/**
 * The batch queue (SPEC §5.8): queued batches hold positions 1, 2, … with no gaps; running
 * batches hold 0; every other batch holds none. Positions are only changed by the actor
 * store, inside a transaction that holds the queue lock, so two processes never hand out
 * the same position or start more than `MAX_RUNNING_BATCHES` batches.
 */
import type { Prisma } from "./db";

type Tx = Prisma.TransactionClient;

// Any constant works; it only has to be the same in every process.
const QUEUE_LOCK_KEY = 727_100_002;

/** Serializes every change to queue membership until the transaction ends. */
export async function lockQueue(tx: Tx): Promise<void> {
  await tx.$queryRaw`SELECT pg_advisory_xact_lock(${QUEUE_LOCK_KEY})::text`;
}

/**
 * Puts a batch that just entered the queue at `position` (1 = next to run), or by default
 * behind every queued batch of equal or higher priority.
 */
export async function placeInQueue(tx: Tx, batchId: string, priority: number, position?: number): Promise<void> {
  let target = position;
  if (target === undefined) {
    const [row] = await tx.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM batches
      WHERE status = 'ANALYZING' AND substate = 'queued' AND id <> ${batchId}::uuid AND priority >= ${priority}`;
    target = (row?.n ?? 0) + 1;
  }
  await tx.$executeRaw`
    UPDATE batches SET queue_position = queue_position + 1
    WHERE status = 'ANALYZING' AND substate = 'queued' AND id <> ${batchId}::uuid AND queue_position >= ${target}`;
  await tx.$executeRaw`UPDATE batches SET queue_position = ${target} WHERE id = ${batchId}::uuid`;
  await renumberQueue(tx);
}

/** Closes gaps (a batch left) and clamps positions past the end, keeping the order. */
export async function renumberQueue(tx: Tx): Promise<void> {
  await tx.$executeRaw`
    UPDATE batches b SET queue_position = q.rn
    FROM (
      SELECT id, row_number() OVER (ORDER BY queue_position NULLS LAST, updated_at, id)::int AS rn
      FROM batches WHERE status = 'ANALYZING' AND substate = 'queued'
    ) q
    WHERE b.id = q.id AND b.queue_position IS DISTINCT FROM q.rn`;
}

/** The queued batches that may start now, first in line first. */
export async function batchesToStart(tx: Tx, maxRunning: number): Promise<string[]> {
  const [row] = await tx.$queryRaw<{ n: number }[]>`
    SELECT count(*)::int AS n FROM batches WHERE status = 'ANALYZING' AND substate = 'running'`;
  const free = maxRunning - (row?.n ?? 0);
  if (free <= 0) return [];
  const heads = await tx.$queryRaw<{ id: string }[]>`
    SELECT id::text FROM batches WHERE status = 'ANALYZING' AND substate = 'queued'
    ORDER BY queue_position LIMIT ${free}`;
  return heads.map((h) => h.id);
}

/** Moves a queued batch to `position`; false if the batch is not queued. */
export async function moveInQueue(tx: Tx, batchId: string, position: number): Promise<boolean> {
  const moved = await tx.$executeRaw`
    UPDATE batches SET queue_position = NULL
    WHERE id = ${batchId}::uuid AND status = 'ANALYZING' AND substate = 'queued'`;
  if (moved === 0) return false;
  await renumberQueue(tx);
  const [row] = await tx.$queryRaw<{ priority: number }[]>`SELECT priority FROM batches WHERE id = ${batchId}::uuid`;
  await placeInQueue(tx, batchId, row?.priority ?? 0, position);
  return true;
}
