/** Wires the batch engine's parts for one process: the actor store, the batch service and the read side. */
import { createActorStore, type ActorStoreDeps, type Commit } from "./actor-store";
import { createBatchQueries } from "./batch-queries";
import { createBatchService } from "./batch-service";
import type { PrismaClient } from "./db";
import type { Logger } from "./logger";

export interface EngineDeps {
  prisma: PrismaClient;
  logger: Logger;
  maxRunningBatches: number;
  beforeCommit?: ActorStoreDeps["beforeCommit"];
}

export function createEngine(deps: EngineDeps) {
  const listeners = new Set<(commit: Commit) => void>();
  const store = createActorStore({
    prisma: deps.prisma,
    logger: deps.logger.child({ component: "actor-store" }),
    maxRunningBatches: deps.maxRunningBatches,
    beforeCommit: deps.beforeCommit,
    onCommit: (commit) => {
      for (const listener of listeners) listener(commit);
    },
  });
  const service = createBatchService({ prisma: deps.prisma, store });
  const queries = createBatchQueries(deps.prisma);
  return {
    store,
    service,
    queries,
    /** Subscribes to every commit made by this process; returns the unsubscribe function. */
    onCommit(listener: (commit: Commit) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

export type Engine = ReturnType<typeof createEngine>;
