/**
 * The durable inbox of worker reports.
 *
 * `deliver(report)` validates a report at this boundary (the zod schema every report has),
 * cleans text PostgreSQL cannot store, and appends it; what arrives within a few ms in this
 * process goes in one multi-row INSERT. It resolves once the report is committed, so a worker
 * acknowledges its BullMQ job only after its report is durable: at-least-once delivery, and
 * the machine (which counts a unit's first report only) makes the result exactly-once.
 *
 * After an append, this process drains the batches it appended for: one drainer per batch at
 * a time, across processes (see `drainInbox`), each group taking up to `maxGroup` reports.
 * A drainer that loses the race leaves the rows to the one holding the lock, which looks
 * again after it commits; a drainer that dies leaves its rows pending, and the periodic
 * sweep of every process picks them up.
 */
import { createHash } from "node:crypto";
import type { Pool } from "pg";
import { workerReportSchema, type WorkerReport } from "../machines/batch.events";
import type { Logger } from "../logger";
import { cleanDeep } from "./clean";
import type { Committer } from "./commit";
import { appendInbox, hasInbox, pendingInboxBatches } from "./sql/inbox-append";
import { deleteInbox, takeInbox } from "./sql/inbox-drain";
import { isDataError } from "./tx";

export interface InboxDeps {
  pool: Pool;
  committer: Committer;
  logger: Logger;
  /** Most reports one drain group applies (default 1000). */
  maxGroup?: number;
  /** How long an append waits for others to share its INSERT (default 2 ms). */
  coalesceMs?: number;
}

interface Waiting {
  report: WorkerReport;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * The inbox's unique key for a report: the unit it names (a digest of them, with their dispatch
 * numbers, for a withdrawal: withdrawals of two dispatches of one unit are two reports).
 */
export function unitKeyOf(r: WorkerReport): string {
  switch (r.type) {
    case "DOCUMENT_STAGED":
    case "DOCUMENT_STAGE_FAILED":
      return r.documentId;
    case "TASK_STARTED":
    case "TASK_COMPLETED":
    case "TASK_FAILED":
      return r.taskId;
    case "FATAL_ERROR":
      return "";
    case "JOBS_WITHDRAWN":
      return createHash("sha256")
        .update([...(r.providerBatchId ? [r.providerBatchId] : []), ...r.ids.map((id, i) => `${id}:${r.dispatches?.[i] ?? ""}`).sort()].join("\n"))
        .digest("hex");
    case "PROVIDER_BATCH_OPENED":
      return r.providerBatchId;
    case "PROVIDER_BATCH_UPDATED":
      return `${r.providerBatchId}:${r.status}`;
  }
}

export function createInbox({ pool, committer, logger, maxGroup = 1000, coalesceMs = 2 }: InboxDeps) {
  let buffer: Waiting[] = [];
  let timer: NodeJS.Timeout | null = null;
  const draining = new Map<string, Promise<void>>();
  const again = new Set<string>();
  const flushes = new Set<Promise<void>>();

  /** Validates and durably appends one report; resolves once it is committed. */
  function deliver(input: unknown): Promise<void> {
    const report = cleanDeep(workerReportSchema.parse(input));
    return new Promise((resolve, reject) => {
      buffer.push({ report, resolve, reject });
      if (!timer) timer = setTimeout(() => void flush(), coalesceMs);
    });
  }

  function flush(): Promise<void> {
    timer = null;
    const batch = buffer;
    buffer = [];
    if (!batch.length) return Promise.resolve();
    const done = (async () => {
      try {
        await appendInbox(pool, batch.map((w) => ({ report: w.report, unitKey: unitKeyOf(w.report) })));
        for (const w of batch) w.resolve();
      } catch (err) {
        if (!isDataError(err) || batch.length === 1) {
          for (const w of batch) w.reject(err);
        } else {
          // One report PostgreSQL refuses must not cost the others their place: one at a time.
          for (const w of batch) {
            await appendInbox(pool, [{ report: w.report, unitKey: unitKeyOf(w.report) }]).then(() => w.resolve(), (e: unknown) => w.reject(e));
          }
        }
      }
      for (const id of new Set(batch.map((w) => w.report.batchId))) void drain(id);
    })();
    flushes.add(done);
    void done.finally(() => flushes.delete(done));
    return done;
  }

  /** Applies a batch's pending reports; concurrent calls in this process coalesce into one more pass. */
  function drain(batchId: string): Promise<void> {
    const running = draining.get(batchId);
    if (running) {
      again.add(batchId);
      return running;
    }
    const run = (async () => {
      try {
        do {
          again.delete(batchId);
          await drainAll(batchId);
        } while (again.has(batchId));
      } catch (err) {
        logger.error({ err, batchId }, "draining the inbox failed; the sweep will try again");
      } finally {
        draining.delete(batchId);
      }
    })();
    draining.set(batchId, run);
    return run;
  }

  async function drainAll(batchId: string) {
    for (;;) {
      let out: { taken: number; busy: boolean };
      try {
        out = await committer.drainInbox(batchId, maxGroup);
      } catch (err) {
        if (!isDataError(err)) throw err;
        out = await drainOneByOne(batchId);
      }
      if (out.busy) return;
      // The lock was released at commit: whatever was appended meanwhile is ours to take.
      if (out.taken < maxGroup && !(await hasInbox(pool, batchId))) return;
    }
  }

  /** A group PostgreSQL refused: each report applied alone (the offender recorded as invalid), then removed. */
  async function drainOneByOne(batchId: string) {
    const { ids, reports } = await takeInbox(pool, batchId, maxGroup);
    for (let i = 0; i < ids.length; i++) {
      await committer.apply(batchId, [{ kind: "report", report: reports[i]! }], false);
      await deleteInbox(pool, [ids[i]!]);
    }
    return { taken: ids.length, busy: false };
  }

  /** Drains every batch with pending reports: the safety net for drainers that died or lost a race. */
  async function sweep(): Promise<void> {
    for (const id of await pendingInboxBatches(pool, 100)) await drain(id);
  }

  /** Appends what is buffered and waits for this process's drains to finish. */
  async function close(): Promise<void> {
    if (timer) clearTimeout(timer);
    await flush();
    await Promise.all([...flushes]);
    await Promise.all([...draining.values()]);
  }

  return { deliver, drain, sweep, close };
}

export type Inbox = ReturnType<typeof createInbox>;
