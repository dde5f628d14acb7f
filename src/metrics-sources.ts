/**
 * Feeds the metrics from the rest of Tranche: the engine's commits and applied groups (events
 * and outcomes, group sizes, transaction times), and, at scrape time, PostgreSQL (batches by
 * state, the outbox) and Redis (jobs by queue and state).
 */
import { eventTypeOf } from "./store";
import type { PrismaClient } from "./db";
import type { Engine } from "./engine";
import type { Logger } from "./logger";
import type { Metrics } from "./metrics";
import { BATCH_STATUSES } from "./server/http-schemas";
import { withTimeout } from "./timeout";


/**
 * Accepted transitions, group sizes and transaction times come from commits (which include the
 * START of a batch promoted from the queue inside another batch's transaction, and the groups
 * the inbox drains); the other outcomes from the results of groups applied straight through
 * the store (user actions, reports that wait for their answer). Reports delivered through the
 * inbox that came to nothing (duplicates) are not counted.
 */
export function observeEngine(metrics: Metrics, engine: Pick<Engine, "onCommit" | "onApplied">): () => void {
  const offCommit = engine.onCommit((commit) => {
    metrics.groupSize.observe(commit.groupSize);
    metrics.transactionSeconds.observe(commit.durationMs / 1000);
    for (const t of commit.transitions) metrics.transitions.inc({ event: t.event, outcome: "accepted" });
  });
  const offApplied = engine.onApplied(({ submissions, results }) => {
    results.forEach((r, i) => {
      const s = submissions[i];
      if (s && r.outcome !== "accepted") metrics.transitions.inc({ event: eventTypeOf(s), outcome: r.outcome });
    });
  });
  return () => {
    offCommit();
    offApplied();
  };
}

/** Batches by state and the outbox, read once per scrape. */
export function observeDatabase(metrics: Metrics, prisma: PrismaClient, logger: Logger): () => void {
  return metrics.onScrape(async () => {
    try {
      const [states, outbox] = await Promise.all([
        prisma.$queryRaw<{ status: string; n: bigint }[]>`SELECT status, count(*) AS n FROM batches GROUP BY status`,
        prisma.$queryRaw<{ n: bigint; oldest: Date | null }[]>`
          SELECT count(*) AS n, min(created_at) AS oldest FROM effects WHERE status = 'pending'`,
      ]);
      const counts = new Map(states.map((r) => [r.status, Number(r.n)]));
      for (const state of BATCH_STATUSES) metrics.batches.set({ state }, counts.get(state) ?? 0);
      const row = outbox[0];
      metrics.outboxPending.set(Number(row?.n ?? 0));
      metrics.outboxOldestAge.set(row?.oldest ? Math.max(0, (Date.now() - row.oldest.getTime()) / 1000) : 0);
    } catch (err) {
      metrics.scrapeErrors.inc({ source: "postgres" });
      logger.warn({ err }, "metrics: reading PostgreSQL failed");
    }
  });
}

/** Job states a queue is asked for; together they are every state BullMQ 6 keeps. */
const JOB_STATES = ["waiting", "active", "delayed", "prioritized", "waiting-children", "completed", "failed", "paused"] as const;

interface CountableQueue {
  name: string;
  getJobCounts(...types: string[]): Promise<Record<string, number>>;
}

/** Jobs by queue and state, read once per scrape; a Redis that does not answer within `timeoutMs` counts as a failed read. */
export function observeQueues(metrics: Metrics, queues: CountableQueue[], logger: Logger, timeoutMs = 2000): () => void {
  return metrics.onScrape(async () => {
    try {
      const counts = await withTimeout(Promise.all(queues.map((q) => q.getJobCounts(...JOB_STATES))), timeoutMs, "Redis did not answer");
      queues.forEach((q, i) => {
        for (const state of JOB_STATES) metrics.jobs.set({ queue: q.name, state }, counts[i]?.[state] ?? 0);
      });
    } catch (err) {
      metrics.scrapeErrors.inc({ source: "redis" });
      logger.warn({ err }, "metrics: reading Redis failed");
    }
  });
}
