/**
 * The effects relay: turns the outbox (one row of queue work per committed group) into
 * BullMQ jobs. It runs right after each local commit and on a periodic sweep, in every
 * process, so a crash between commit and enqueue is repaired by whichever process sweeps next.
 *
 * It only relays. Rows are leased in one statement (`available_at` moves past now, so no
 * other process takes them meanwhile, and no row lock is held while Redis is called); the
 * jobs of every leased row go to Redis in one `addBulk` per queue; then the rows are marked
 * done in one statement. A relay that dies mid-way leaves its rows to be leased again when
 * the lease ends; job ids are deterministic per dispatch, so a repeated add is harmless.
 * Withdrawals are handed, in order, to the withdrawer.
 */
import type { Pool } from "pg";
import type { Logger } from "../logger";
import type { OutboxItem, OutboxPayload } from "../store";
import { jobIds, LANE_SUBMIT_OPTIONS, type AnalysisJob, type LaneJob, type Queues, type StagingJob } from "./queues";
import type { Withdrawer } from "./withdraw";

export interface EffectsRelayDeps {
  pool: Pool;
  queues: Queues;
  withdraw: Withdrawer;
  logger: Logger;
  /** Most outbox rows leased at once (default 200). */
  claimSize?: number;
  /** How long a lease lasts before another process may take the rows (default 10 s). */
  leaseSeconds?: number;
}

interface LeasedRow {
  id: string;
  attempts: number;
  payload: OutboxPayload;
}

export function createEffectsRelay(deps: EffectsRelayDeps) {
  const { pool, queues, withdraw, logger } = deps;
  const claimSize = deps.claimSize ?? 200;
  const leaseSeconds = deps.leaseSeconds ?? 10;
  let draining: Promise<void> | null = null;
  let again = false;

  /** Dispatches every pending effect; concurrent calls coalesce into one more pass. */
  function drain(): Promise<void> {
    if (draining) {
      again = true;
      return draining;
    }
    draining = (async () => {
      try {
        do {
          again = false;
          while ((await drainOnce()) === claimSize);
        } while (again);
      } finally {
        draining = null;
      }
    })();
    return draining;
  }

  async function drainOnce(): Promise<number> {
    const { rows } = await pool.query<LeasedRow>(
      `UPDATE effects SET available_at = now() + make_interval(secs => $2), attempts = attempts + 1
       WHERE id IN (SELECT id FROM effects WHERE status = 'pending' AND available_at <= now()
                    ORDER BY available_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)
       RETURNING id::text, attempts, payload`,
      [claimSize, leaseSeconds],
    );
    if (!rows.length) return 0;
    rows.sort((a, b) => Number(BigInt(a.id) - BigInt(b.id)));
    try {
      await relay(rows);
      await pool.query(`UPDATE effects SET status = 'done', dispatched_at = now() WHERE id = ANY($1::bigint[])`, [rows.map((r) => r.id)]);
    } catch (err) {
      const attempts = Math.max(...rows.map((r) => r.attempts));
      logger.warn({ err, effects: rows.length }, "effect dispatch failed; will retry");
      await pool.query(
        `UPDATE effects SET last_error = $2, available_at = now() + make_interval(secs => $3) WHERE id = ANY($1::bigint[])`,
        [rows.map((r) => r.id), String(err), Math.min(60, 2 ** attempts)],
      );
    }
    return rows.length;
  }

  /** Carries out the rows' items in order: adds batched until a withdrawal needs them in Redis first. */
  async function relay(rows: LeasedRow[]) {
    let staging: { name: string; data: StagingJob; opts: { jobId: string } }[] = [];
    let analysis: { name: string; data: AnalysisJob; opts: { jobId: string } }[] = [];
    let lane: { name: string; data: LaneJob; opts: { jobId: string } & typeof LANE_SUBMIT_OPTIONS }[] = [];
    const flush = async () => {
      if (staging.length) await queues.staging.addBulk(staging);
      if (analysis.length) await queues.analysis.addBulk(analysis);
      if (lane.length) await queues.lane.addBulk(lane);
      staging = [];
      analysis = [];
      lane = [];
    };
    for (const row of rows) {
      for (const item of itemsOf(row.payload)) {
        const batchId = row.payload.batchId;
        switch (item.type) {
          case "enqueueStaging":
            for (const u of item.units) {
              const data = { batchId, runId: item.runId, documentId: u.id, dispatch: u.dispatch };
              staging.push({ name: "stage", data, opts: { jobId: jobIds.staging(data) } });
            }
            break;
          case "enqueueAnalysis":
            // The batch lane submits a dispatch's tasks together, as provider batches.
            if (item.lane === "batch") {
              const first = item.units[0];
              if (first) {
                const data: LaneJob = { kind: "submit", batchId, runId: item.runId };
                lane.push({ name: "submit", data, opts: { jobId: jobIds.laneSubmit({ ...data, key: `${first.id}-d${first.dispatch}` }), ...LANE_SUBMIT_OPTIONS } });
              }
              break;
            }
            for (const u of item.units) {
              const data = { batchId, runId: item.runId, taskId: u.id, dispatch: u.dispatch };
              analysis.push({ name: "analyse", data, opts: { jobId: jobIds.analysis(data) } });
            }
            break;
          case "withdrawJobs":
            await flush();
            await withdraw(batchId, item.runId, item.kind);
            break;
        }
      }
    }
    await flush();
  }

  /** Drops dispatched effects older than a day: the history keeps the record of what happened. */
  async function prune(): Promise<number> {
    const r = await pool.query(`DELETE FROM effects WHERE status = 'done' AND dispatched_at < now() - interval '1 day'`);
    return r.rowCount ?? 0;
  }

  return { drain, prune };
}

/** A row's items; rows written before one row per group held a single item as their payload. */
function itemsOf(payload: OutboxPayload | (OutboxItem & { batchId: string })): OutboxItem[] {
  if ("items" in payload) return payload.items;
  const legacy = payload as unknown as { type: string; batchId: string; runId: number; kind?: "staging" | "analysis"; documentIds?: string[]; taskIds?: string[] };
  if (legacy.type === "enqueueStaging") return [{ type: "enqueueStaging", runId: legacy.runId, units: (legacy.documentIds ?? []).map((id) => ({ id, dispatch: 0 })) }];
  if (legacy.type === "enqueueAnalysis") return [{ type: "enqueueAnalysis", runId: legacy.runId, units: (legacy.taskIds ?? []).map((id) => ({ id, dispatch: 0 })) }];
  return [{ type: "withdrawJobs", runId: legacy.runId, kind: legacy.kind ?? "analysis" }];
}

export type EffectsRelay = ReturnType<typeof createEffectsRelay>;
