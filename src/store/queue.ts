/**
 * The batch queue: queued batches hold positions 1, 2, … with no gaps; running batches hold
 * 0; every other batch holds none. Positions change only inside a transaction that holds the
 * queue lock, so two processes never hand out the same position or start more than
 * `MAX_RUNNING_BATCHES` batches.
 */
import type { Sql } from "./pool";

// Any constant works; it only has to be the same in every process.
const QUEUE_LOCK_KEY = 727_100_002;

/** Serializes every change to queue membership until the transaction ends. */
export async function lockQueue(sql: Sql): Promise<void> {
  await sql.query(`SELECT pg_advisory_xact_lock($1)`, [QUEUE_LOCK_KEY]);
}

/**
 * Puts a batch that just entered the queue at `position` (1 = next to run), or by default
 * behind every queued batch of equal or higher priority.
 */
export async function placeInQueue(sql: Sql, batchId: string, priority: number, position?: number): Promise<void> {
  let target = position;
  if (target === undefined) {
    const { rows } = await sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM batches WHERE status = 'ANALYZING' AND substate = 'queued' AND id <> $1::uuid AND priority >= $2`,
      [batchId, priority],
    );
    target = (rows[0]?.n ?? 0) + 1;
  }
  await sql.query(
    `UPDATE batches SET queue_position = queue_position + 1
     WHERE status = 'ANALYZING' AND substate = 'queued' AND id <> $1::uuid AND queue_position >= $2`,
    [batchId, target],
  );
  await sql.query(`UPDATE batches SET queue_position = $2 WHERE id = $1::uuid`, [batchId, target]);
  await renumberQueue(sql);
}

/** Closes gaps (a batch left) and clamps positions past the end, keeping the order. */
export async function renumberQueue(sql: Sql): Promise<void> {
  await sql.query(`
    UPDATE batches b SET queue_position = q.rn
    FROM (
      SELECT id, row_number() OVER (ORDER BY queue_position NULLS LAST, updated_at, id)::int AS rn
      FROM batches WHERE status = 'ANALYZING' AND substate = 'queued'
    ) q
    WHERE b.id = q.id AND b.queue_position IS DISTINCT FROM q.rn`);
}

/**
 * The queued batches that may start now. With one tenant this is simply the first in line.
 * With several, scarce slots go round-robin: each tenant's first in line competes, the tenant
 * whose last start is oldest goes first, and no tenant passes `maxPerTenant` running batches.
 * The chosen tenants' turns are recorded in the same transaction (under the queue lock).
 */
export async function batchesToStart(sql: Sql, maxRunning: number, maxPerTenant?: number): Promise<string[]> {
  const { rows } = await sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM batches WHERE status = 'ANALYZING' AND substate = 'running'`);
  const free = maxRunning - (rows[0]?.n ?? 0);
  if (free <= 0) return [];
  const heads = await sql.query<{ id: string; tenant: string }>(
    `WITH running AS (
       SELECT tenant, count(*)::int AS n FROM batches WHERE status = 'ANALYZING' AND substate = 'running' GROUP BY tenant
     ), ranked AS (
       SELECT id, tenant, queue_position, row_number() OVER (PARTITION BY tenant ORDER BY queue_position, id) AS rank
       FROM batches WHERE status = 'ANALYZING' AND substate = 'queued'
     )
     SELECT r.id::text, r.tenant FROM ranked r
     LEFT JOIN running ON running.tenant = r.tenant
     LEFT JOIN tenant_turns t ON t.tenant = r.tenant
     WHERE r.rank + COALESCE(running.n, 0) <= $2
     ORDER BY r.rank, t.last_started_at NULLS FIRST, r.queue_position
     LIMIT $1`,
    [free, maxPerTenant ?? maxRunning],
  );
  const tenants = [...new Set(heads.rows.map((h) => h.tenant))];
  if (tenants.length) {
    await sql.query(
      `INSERT INTO tenant_turns (tenant, last_started_at)
       SELECT t, clock_timestamp() FROM unnest($1::text[]) AS t
       ON CONFLICT (tenant) DO UPDATE SET last_started_at = EXCLUDED.last_started_at`,
      [tenants],
    );
  }
  return heads.rows.map((h) => h.id);
}

/** Moves a queued batch to `position`; false if the batch is not queued. */
export async function moveInQueue(sql: Sql, batchId: string, position: number): Promise<boolean> {
  const moved = await sql.query(
    `UPDATE batches SET queue_position = NULL WHERE id = $1::uuid AND status = 'ANALYZING' AND substate = 'queued' RETURNING priority`,
    [batchId],
  );
  if (!moved.rowCount) return false;
  await renumberQueue(sql);
  await placeInQueue(sql, batchId, (moved.rows[0] as { priority: number }).priority, position);
  return true;
}
