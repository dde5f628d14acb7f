/** Wires the batch engine's parts for one process: the store, the batch service and the read side. */
import { createBatchQueries } from "./batch-queries";
import { createBatchService } from "./batch-service";
import type { PrismaClient } from "./db";
import type { Logger } from "./logger";
import { createStore, type Commit, type Store, type StoreDeps, type Submission, type SubmissionResult } from "./store";
import { createUploadSpool } from "./uploads/upload-spool";

export interface EngineDeps {
  prisma: PrismaClient;
  /** The store writes through its own pool on this database. */
  databaseUrl: string;
  /** Connections of the store's pool (default 10). */
  poolSize?: number;
  logger: Logger;
  maxRunningBatches: number;
  maxRunningBatchesPerTenant?: number;
  beforeCommit?: StoreDeps["beforeCommit"];
  /** Prices of the batches' models, from the configuration (see `createPricingResolver`). */
  pricing?: StoreDeps["pricing"];
  /** INBOX_COALESCE_MS and INBOX_GROUP_SIZE (defaults 2 ms and 1000). */
  inbox?: { coalesceMs?: number; groupSize?: number };
  /** The result cache's fingerprint of a batch's analysis (see src/cache/fingerprint.ts); unset, no result cache. */
  fingerprint?: StoreDeps["fingerprint"];
}

/** A group of submissions applied straight through the store (not through the inbox), and what each came to. */
export interface AppliedGroup {
  submissions: Submission[];
  results: SubmissionResult[];
}

export function createEngine(deps: EngineDeps) {
  const listeners = new Set<(commit: Commit) => void>();
  const appliedListeners = new Set<(group: AppliedGroup) => void>();
  const store = createStore({
    databaseUrl: deps.databaseUrl,
    poolSize: deps.poolSize ?? 10,
    logger: deps.logger.child({ component: "store" }),
    maxRunningBatches: deps.maxRunningBatches,
    maxRunningBatchesPerTenant: deps.maxRunningBatchesPerTenant,
    beforeCommit: deps.beforeCommit,
    pricing: deps.pricing,
    inboxCoalesceMs: deps.inbox?.coalesceMs,
    maxInboxGroup: deps.inbox?.groupSize,
    fingerprint: deps.fingerprint,
    onCommit: (commit) => {
      for (const listener of listeners) listener(commit);
    },
  });
  // Commits carry only accepted transitions; refusals are seen here, outside the one writer.
  const observed: Store = {
    ...store,
    async apply(batchId, submissions) {
      const results = await store.apply(batchId, submissions);
      for (const listener of appliedListeners) listener({ submissions, results });
      return results;
    },
  };
  const service = createBatchService({ prisma: deps.prisma, store: observed });
  const queries = createBatchQueries(deps.prisma);
  return {
    store,
    service,
    queries,
    uploads: createUploadSpool(deps.prisma),
    /** Subscribes to every commit made by this process; returns the unsubscribe function. */
    onCommit(listener: (commit: Commit) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** Subscribes to every group this process applied straight through the store; returns the unsubscribe function. */
    onApplied(listener: (group: AppliedGroup) => void): () => void {
      appliedListeners.add(listener);
      return () => appliedListeners.delete(listener);
    },
    /** Flushes the inbox and closes the store's pool. */
    close: () => store.close(),
  };
}

export type Engine = ReturnType<typeof createEngine>;
