/**
 * The store: the one writer of batch state, on its own node-postgres pool.
 *
 * - `commit.ts`: group commit (read, plan, set-based writes, batch row, history, outbox, notify);
 * - `plan.ts`: the pure planner the commit runs;
 * - `sql/`: one statement per file;
 * - `inbox.ts`: the durable inbox of worker reports and its drainer;
 * - `notify.ts`, `queue.ts`, `tx.ts`, `clean.ts`, `pool.ts`: the channel, the batch queue, transactions, storable text.
 */
import type { Logger } from "../logger";
import { createCommitter, type CommitterDeps } from "./commit";
import { createInbox } from "./inbox";
import { createPool } from "./pool";
import { lockQueue, moveInQueue } from "./queue";
import { inTransaction } from "./tx";

export type { Commit, CreateBatchRecord, NewDocument, OutboxItem, OutboxPayload, Submission, SubmissionResult } from "./types";
export { eventTypeOf } from "./types";
export { InvariantError, taskIdFor } from "./types";
export type { Sql } from "./pool";

export interface StoreDeps {
  databaseUrl: string;
  /** Connections of the store's own pool. */
  poolSize: number;
  logger: Logger;
  maxRunningBatches: number;
  maxRunningBatchesPerTenant?: number;
  onCommit?: CommitterDeps["onCommit"];
  beforeCommit?: CommitterDeps["beforeCommit"];
  pricing?: CommitterDeps["pricing"];
  /** Most reports one inbox drain applies at once, and one task start takes along (default 1000; 0: none along). */
  maxInboxGroup?: number;
  /** How long an inbox append waits for others to share it (default 2 ms). */
  inboxCoalesceMs?: number;
  /** The result cache's fingerprint of a batch's analysis; unset, there is no result cache. */
  fingerprint?: CommitterDeps["fingerprint"];
}

export function createStore(deps: StoreDeps) {
  const pool = createPool(deps.databaseUrl, deps.poolSize, deps.logger);
  const committer = createCommitter({ pool, logger: deps.logger, maxRunningBatches: deps.maxRunningBatches, maxRunningBatchesPerTenant: deps.maxRunningBatchesPerTenant, onCommit: deps.onCommit, beforeCommit: deps.beforeCommit, pricing: deps.pricing, fingerprint: deps.fingerprint, syncInboxTake: deps.maxInboxGroup });
  const inbox = createInbox({
    pool, committer, logger: deps.logger.child({ component: "inbox" }), maxGroup: deps.maxInboxGroup || undefined, coalesceMs: deps.inboxCoalesceMs,
  });

  /** Moves a queued batch to `position` (1 = next); false if it is not queued. */
  function moveQueued(batchId: string, position: number): Promise<boolean> {
    return inTransaction(pool, async (sql) => {
      await lockQueue(sql);
      return moveInQueue(sql, batchId, position);
    });
  }

  return {
    pool,
    createBatch: committer.createBatch,
    apply: committer.apply,
    rebalance: committer.sweepQueue,
    moveQueued,
    inbox,
    async close() {
      await inbox.close();
      await pool.end();
    },
  };
}

export type Store = ReturnType<typeof createStore>;
