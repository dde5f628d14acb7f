/**
 * Group commit: applies a group of submissions to one batch in one transaction.
 *
 * Read (the batch row, locked, and every unit the group names, in one statement each), plan
 * (pure: `planGroup`), write (one statement per kind of write), then the batch row, history,
 * one outbox row and one notification — a handful of round trips whatever the group's size.
 * Nothing is kept in memory between groups: every group starts from what PostgreSQL holds, so
 * any number of processes may commit at once.
 *
 * Lock order, to stay free of deadlocks: the queue lock (when taken) before any batch row;
 * one batch row at a time, except promotion, which runs under the queue lock. Whether a group
 * needs the queue lock is known from its submissions (any user action or system event), or,
 * for a group of reports, from the locked row before anything is planned: only a group that
 * may end a run needs it, and that group starts once more, with the lock, having written
 * nothing.
 *
 * A submission whose writes PostgreSQL refuses (data the planner's checks did not catch)
 * never takes its group down: the group is re-applied one submission at a time, and the one
 * that fails is recorded as `invalid` on its own.
 */
import { randomUUID } from "node:crypto";
import type { Pool } from "pg";
import { initialSnapshot, stateName, stateOf } from "../machines/batch.transition";
import { loadSnapshot, type SnapshotUpgradeRecord } from "../stored-snapshot";
import type { Logger } from "../logger";
import type { AnalysisMode, BatchChange } from "../vocabulary";
import { notifyChange } from "./notify";
import { mayChangeQueue, planGroup, queueChangedBetween, type GroupPlan, type HistoryRow, type Write } from "./plan";
import type { Sql } from "./pool";
import { batchesToStart, lockQueue, placeInQueue, renumberQueue } from "./queue";
import { advanceHistory } from "./sql/advance-history";
import { findCacheHits, type CacheScope } from "./sql/cache-hits";
import { populateCache } from "./sql/cache-populate";
import { beginStaging } from "./sql/begin-staging";
import { cancelPending } from "./sql/cancel-pending";
import { createTasks } from "./sql/create-tasks";
import { deleteBatch } from "./sql/delete-batch";
import { deleteDocuments } from "./sql/delete-documents";
import { dispatchUnits } from "./sql/dispatch-units";
import { insertBatch } from "./sql/insert-batch";
import { insertDocuments } from "./sql/insert-documents";
import { documentCount, isStagedUpload, moveUploadIntoBatch } from "../uploads/upload-spool";
import { insertHistory } from "./sql/insert-history";
import { insertOutbox } from "./sql/insert-outbox";
import { deleteInbox, takeInbox, takeInboxIfFree, tryLockDrain } from "./sql/inbox-drain";
import { lockBatch } from "./sql/lock-batch";
import { readUnits } from "./sql/read-units";
import { releaseWithdrawn } from "./sql/release-withdrawn";
import { resetOutput } from "./sql/reset-output";
import { settleCached } from "./sql/settle-cached";
import { settleDocuments } from "./sql/settle-documents";
import { settleTasks } from "./sql/settle-tasks";
import { startTasks } from "./sql/start-tasks";
import { updateBatch } from "./sql/update-batch";
import { openProviderBatch } from "./sql/open-provider-batch";
import { updateProviderBatch } from "./sql/update-provider-batch";
import { estimateBatch, storeEstimate } from "./sql/estimate-batch";
import { createPricingResolver, loadPriceTable, type PricedAnalysis, type PricingResolver } from "../pricing";
import { DEFAULT_TENANT } from "../tenants";
import { inTransaction, isDataError } from "./tx";
import type { AnalysisInput } from "../server/http-schemas";
import { eventTypeOf, InvariantError, type Commit, type CreateBatchRecord, type OutboxItem, type Submission, type SubmissionResult } from "./types";

export interface CommitterDeps {
  pool: Pool;
  logger: Logger;
  maxRunningBatches: number;
  /** Most batches of one tenant running at once (unset: no limit beyond `maxRunningBatches`). */
  maxRunningBatchesPerTenant?: number;
  /** Called after every commit; must not throw. */
  onCommit?: (commit: Commit) => void;
  /** What a batch's analysis costs (for its estimate and the budget's reservations); default: the built-in prices, no configuration. */
  pricing?: PricingResolver;
  /**
   * Most pending inbox reports a group of synchronous reports (a task start) takes along when no
   * drainer holds the batch (default 1000; 0: none), so that one transaction applies both.
   */
  syncInboxTake?: number;
  /** Test seam: runs inside the transaction after every write, before commit. */
  beforeCommit?: (sql: Sql, batchId: string) => Promise<void>;
  /**
   * The result cache's fingerprint of a batch's analysis (null: the batch keeps out of the cache).
   * Unset: no result cache.
   */
  fingerprint?: (analysis: AnalysisInput) => string | null;
}

/** Most batches whose fingerprint one committer remembers (a batch's analysis never changes). */
const FINGERPRINTS_KEPT = 10_000;

class NeedsQueueLock extends Error {}

/** One transaction's state: whether it holds the queue lock, and the commits to announce after it. */
interface Session {
  sql: Sql;
  withQueueLock: boolean;
  commits: Commit[];
  started: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function createCommitter(deps: CommitterDeps) {
  const { pool, logger } = deps;
  const syncInboxTake = deps.syncInboxTake ?? 1000;
  const pricing = deps.pricing ?? createPricingResolver({ LLM_OUTPUT_RETRIES: 2 }, loadPriceTable());
  const fingerprints = new Map<string, string | null>();

  /** Where the batch's answers are kept and looked up in the result cache; null when it keeps out. */
  async function cacheScope(sql: Sql, batchId: string, tenant: string): Promise<CacheScope | null> {
    if (!deps.fingerprint) return null;
    let fingerprint = fingerprints.get(batchId);
    if (fingerprint === undefined) {
      const { rows } = await sql.query<{ analysis: AnalysisInput }>(`SELECT analysis FROM batches WHERE id = $1::uuid`, [batchId]);
      fingerprint = rows[0] ? deps.fingerprint(rows[0].analysis) : null;
      if (fingerprints.size >= FINGERPRINTS_KEPT) fingerprints.delete(fingerprints.keys().next().value!);
      fingerprints.set(batchId, fingerprint);
    }
    return fingerprint === null ? null : { tenant, fingerprint };
  }

  /** Inserts a new batch in SAVED with its documents and a `created` history entry. */
  async function createBatch(record: CreateBatchRecord): Promise<string> {
    const input = {
      documents: documentCount(record.documents),
      window: record.window,
      ...(record.analysisWindow !== undefined && { analysisWindow: record.analysisWindow }),
      stagingTolerance: record.stagingTolerance,
      failureTolerance: record.failureTolerance,
      ...(record.budgetUsd != null && { budgetUsd: record.budgetUsd }),
    };
    const snapshot = initialSnapshot(input);
    const id = randomUUID();
    const started = performance.now();
    await inTransaction(pool, async (sql) => {
      const tenant = record.tenant ?? DEFAULT_TENANT;
      await insertBatch(sql, { id, name: record.name, tenant, analysis: record.analysis, priority: record.priority, snapshot });
      const ids = Array.from({ length: documentCount(record.documents) }, () => randomUUID());
      if (isStagedUpload(record.documents)) await moveUploadIntoBatch(sql, id, ids, record.documents);
      else await insertDocuments(sql, id, ids, record.documents);
      const created: HistoryRow = {
        seq: 1, outcome: "accepted", eventType: "created", source: "user", actor: record.actor ?? null, fromState: "", toState: "SAVED", version: 1,
        reason: null, context: null, event: { type: "created", input },
      };
      await insertHistory(sql, id, [created]);
      await notifyChange(sql, { batch_id: id, tenant, version: 1, status: "SAVED", substate: null, deleted: false, at: Date.now() });
    });
    announce({
      batchId: id, version: 1, status: "SAVED", substate: null, deleted: false, transitions: [], outboxIds: [],
      groupSize: 1, durationMs: performance.now() - started,
    });
    logger.info({ batchId: id, to: "SAVED", version: 1, documents: input.documents }, "batch created");
    return id;
  }

  /** Applies a group of submissions to one batch; one result per submission, in order. */
  async function apply(batchId: string, submissions: Submission[], withInbox = true): Promise<SubmissionResult[]> {
    try {
      return (await runGroup(batchId, submissions, withInbox)).results;
    } catch (err) {
      if (!isDataError(err)) throw err;
      // One by one, and without the inbox's reports: an offender among those is the drainer's to find.
      if (submissions.length === 1 && !withInbox) return [await recordInvalid(batchId, submissions[0]!, err)];
      if (submissions.length > 1) logger.warn({ err, batchId, size: submissions.length }, "a group's writes were refused; applying its submissions one by one");
      const results: SubmissionResult[] = [];
      for (const s of submissions) results.push(...(await apply(batchId, [s], false)));
      return results;
    }
  }

  /**
   * Applies up to `limit` pending inbox reports of a batch in one group and deletes them in the
   * same transaction. Only one process drains a batch at a time (a transaction-scoped advisory
   * lock, tried, never waited for): `busy` means another drainer holds it.
   */
  async function drainInbox(batchId: string, limit: number): Promise<{ taken: number; busy: boolean }> {
    const out = await runGroup(batchId, { inbox: limit });
    return { taken: out.taken, busy: out.busy };
  }

  async function runGroup(batchId: string, source: Submission[] | { inbox: number }, withInbox = false) {
    let withQueueLock = Array.isArray(source) && source.some((s) => s.kind !== "report");
    for (;;) {
      const session: Session = { sql: undefined as unknown as Sql, withQueueLock, commits: [], started: performance.now() };
      try {
        const out = await inTransaction(pool, async (sql) => {
          session.sql = sql;
          if (!Array.isArray(source) && !(await tryLockDrain(sql, batchId))) return { results: [], taken: 0, busy: true };
          if (withQueueLock) await lockQueue(sql);
          const out = await applyToBatch(session, batchId, source, withInbox);
          if (out.queueChanged) await rebalance(session, out.placement ? { batchId, priority: out.priority, position: out.placement.position } : undefined);
          await deps.beforeCommit?.(sql, batchId);
          return { results: out.results, taken: out.taken, busy: false };
        });
        for (const commit of session.commits) announce({ ...commit, durationMs: performance.now() - session.started });
        return out;
      } catch (err) {
        if (err instanceof NeedsQueueLock && !withQueueLock) {
          withQueueLock = true;
          continue;
        }
        throw err;
      }
    }
  }

  async function applyToBatch(session: Session, batchId: string, source: Submission[] | { inbox: number }, withInbox = false) {
    const { sql } = session;
    const row = await lockBatch(sql, batchId);
    // Reports waiting in the inbox ride along with synchronous reports when that costs one statement:
    // they are older, so they go first, and the caller gets the results of its own submissions only.
    const alongside = Array.isArray(source) && withInbox && row && syncInboxTake > 0 && source.every((s) => s.kind === "report");
    const taken = !Array.isArray(source) ? await takeInbox(sql, batchId, source.inbox) : alongside ? await takeInboxIfFree(sql, batchId, syncInboxTake) : null;
    const own = Array.isArray(source) ? source.length : 0;
    const submissions: Submission[] = [...(taken?.reports ?? []).map((report): Submission => ({ kind: "report", report })), ...(Array.isArray(source) ? source : [])];
    if (!row) {
      // Reports for a batch that no longer exists are dropped with it.
      if (taken?.ids.length) await deleteInbox(sql, taken.ids);
      const results = submissions.map((): SubmissionResult => ({ outcome: "not_found", code: "not_found", from: "", to: "", version: 0, allowedActions: [] }));
      return { results, queueChanged: false, placement: null, priority: 0, taken: taken?.ids.length ?? 0 };
    }
    if (!submissions.length) return { results: [], queueChanged: false, placement: null, priority: row.priority, taken: 0 };
    // Snapshot migrations run on load; the upgrade is recorded with the group that loaded it.
    const loaded = loadSnapshot(batchId, row.snapshot, row.machineVersion);
    const start = loaded.snapshot;
    if (!session.withQueueLock && mayChangeQueue(start, submissions)) throw new NeedsQueueLock();

    const { documentIds, taskIds } = namedUnits(submissions);
    const units = await readUnits(sql, batchId, documentIds, taskIds);
    const firstSeq = row.historySeq + (loaded.upgrade ? 1 : 0);
    const plan = planGroup(start, row.version, firstSeq, submissions, units, { newId: randomUUID });
    if (loaded.upgrade) plan.history.unshift(upgradeRow(row.historySeq + 1, stateName(start), row.version, loaded.upgrade));
    // A start the budget cannot afford pauses the batch, which only the machine knew: again, with the lock.
    if (plan.queueChanged && !session.withQueueLock) throw new NeedsQueueLock();

    const outbox: OutboxItem[] = [];
    const cache = needsCache(plan.writes) ? await cacheScope(sql, batchId, row.tenant) : null;
    for (const w of plan.writes) {
      if (w.type === "estimate") await storeEstimate(sql, batchId, await estimateBatch(sql, batchId, pricing(await readAnalysis(sql, batchId)), cache));
      else await carryOut(sql, batchId, row.lane, w, outbox, cache);
    }
    if (cache && !plan.deleted) await completeFromCache(session, batchId, plan, outbox, cache, row.lane);
    if (plan.queueChanged && !session.withQueueLock) throw new NeedsQueueLock();

    const { status, substate } = stateOf(plan.snapshot);
    const outboxIds: string[] = [];
    if (plan.deleted) {
      await deleteBatch(sql, batchId);
    } else {
      await updateBatch(sql, batchId, plan.snapshot, plan.version, plan.seq);
      await insertHistory(sql, batchId, plan.history);
      if (outbox.length) outboxIds.push(await insertOutbox(sql, { batchId, items: outbox }, plan.version));
    }
    if (taken?.ids.length) await deleteInbox(sql, taken.ids);
    if (plan.transitions.length || plan.deleted) {
      const change: BatchChange = { batch_id: batchId, tenant: row.tenant, version: plan.version, status: plan.deleted ? "DELETED" : status, substate, deleted: plan.deleted, at: Date.now() };
      await notifyChange(sql, change);
      session.commits.push({
        batchId, version: plan.version, status: change.status, substate, deleted: plan.deleted, transitions: plan.transitions, outboxIds,
        groupSize: submissions.length, durationMs: 0,
      });
    }
    const results = Array.isArray(source) ? plan.results.slice(plan.results.length - own) : plan.results;
    return { results, queueChanged: plan.queueChanged, placement: plan.placement, priority: row.priority, taken: taken?.ids.length ?? 0 };
  }

  /**
   * Completes, in this transaction, the tasks whose answer is in the result cache: the whole run's
   * pending tasks when the group started the run, and any task the group dispatched. Each becomes a
   * `TASK_COMPLETED` the machine accepts like a worker's (its refills dispatch further tasks, which
   * are looked up in turn), and no job is enqueued for it. Extends `plan` with what it did.
   */
  async function completeFromCache(session: Session, batchId: string, plan: GroupPlan, outbox: OutboxItem[], cache: CacheScope, lane: AnalysisMode) {
    const { sql } = session;
    let wholeRun = plan.transitions.some((t) => t.event === "START");
    let looked = 0;
    for (;;) {
      const { status, substate } = stateOf(plan.snapshot);
      if (status !== "ANALYZING" || substate !== "running") return;
      const runId = plan.snapshot.context.runId;
      const dispatched = analysisUnits(outbox, runId).slice(looked);
      const hits = await findCacheHits(sql, batchId, runId, cache, wholeRun, dispatched);
      wholeRun = false;
      if (!hits.length) return;
      withholdJobs(outbox, new Set(hits.map((h) => h.id)));
      // Every job left in the outbox has been looked up; what the next refills add has not.
      looked = analysisUnits(outbox, runId).length;
      const units = { documents: new Map(), tasks: new Map(hits.map((h) => [h.id, { runId, status: h.status }])) };
      const submissions: Submission[] = hits.map((h) => ({ kind: "cacheHit", runId, taskId: h.id, output: h.output, savedUsd: h.savedUsd, strategy: h.strategy }));
      const next = planGroup(plan.snapshot, plan.version, plan.seq, submissions, units, { newId: randomUUID });
      for (const w of next.writes) await carryOut(sql, batchId, lane, w, outbox, cache);
      plan.history.push(...next.history);
      plan.transitions.push(...next.transitions);
      plan.queueChanged = plan.queueChanged || queueChangedBetween(plan.snapshot, next.snapshot);
      plan.snapshot = next.snapshot;
      plan.version = next.version;
      plan.seq = next.seq;
    }
  }

  /** Places a batch that entered the queue, starts queued batches while slots are free, and closes gaps. */
  async function rebalance(session: Session, entered?: { batchId: string; priority: number; position?: number }) {
    const { sql } = session;
    if (entered) await placeInQueue(sql, entered.batchId, entered.priority, entered.position);
    // A batch whose every task is in the result cache completes as it starts, freeing its slot at once.
    for (let freed = true; freed; ) {
      freed = false;
      for (const id of await batchesToStart(sql, deps.maxRunningBatches, deps.maxRunningBatchesPerTenant)) {
        const out = await applyToBatch(session, id, [{ kind: "system", event: { type: "START" }, reason: "a running slot is free" }]);
        if (out.queueChanged) freed = true;
      }
    }
    await renumberQueue(sql);
  }

  /** Records, on its own, a submission whose writes PostgreSQL refused: an `invalid` history entry and no change. */
  async function recordInvalid(batchId: string, submission: Submission, cause: unknown): Promise<SubmissionResult> {
    const reason = `the submission could not be stored: ${(cause as Error).message}`;
    return inTransaction(pool, async (sql) => {
      const row = await lockBatch(sql, batchId);
      if (!row) return { outcome: "not_found", code: "not_found", from: "", to: "", version: 0, allowedActions: [] };
      const state = stateName(loadSnapshot(batchId, row.snapshot, row.machineVersion).snapshot);
      const seq = row.historySeq + 1;
      await insertHistory(sql, batchId, [{
        seq, outcome: "invalid", eventType: eventTypeOf(submission), source: sourceOf(submission), fromState: state, toState: state,
        version: row.version, reason, context: null, event: { type: eventTypeOf(submission) },
      }]);
      await advanceHistory(sql, batchId, seq);
      return { outcome: "invalid", code: "invalid_input", from: state, to: state, version: row.version, allowedActions: [], reason };
    });
  }

  function announce(commit: Commit) {
    for (const t of commit.transitions) {
      logger.info({ batchId: commit.batchId, from: t.from, event: t.event, to: t.to, version: t.version, effects: t.effects }, "transition");
    }
    try {
      deps.onCommit?.(commit);
    } catch (err) {
      logger.error({ err, batchId: commit.batchId }, "commit listener failed");
    }
  }

  /** Starts queued batches when slots are free; the periodic safety net behind in-transaction promotion. */
  async function sweepQueue(): Promise<void> {
    const session: Session = { sql: undefined as unknown as Sql, withQueueLock: true, commits: [], started: performance.now() };
    await inTransaction(pool, async (sql) => {
      session.sql = sql;
      await lockQueue(sql);
      await rebalance(session);
    });
    for (const commit of session.commits) announce({ ...commit, durationMs: performance.now() - session.started });
  }

  return { createBatch, apply, drainInbox, sweepQueue };
}

export type Committer = ReturnType<typeof createCommitter>;

/** Every unit the group's submissions name, to read in one statement. */
function namedUnits(submissions: Submission[]): { documentIds: string[]; taskIds: string[] } {
  const documentIds = new Set<string>();
  const taskIds = new Set<string>();
  for (const s of submissions) {
    if (s.kind === "removeDocuments") for (const id of s.documentIds) documentIds.add(id);
    if (s.kind !== "report") continue;
    const r = s.report;
    if (r.type === "DOCUMENT_STAGED" || r.type === "DOCUMENT_STAGE_FAILED") documentIds.add(r.documentId);
    else if (r.type === "TASK_STARTED" || r.type === "TASK_COMPLETED" || r.type === "TASK_FAILED") taskIds.add(r.taskId);
    else if (r.type === "JOBS_WITHDRAWN") for (const id of r.ids) (r.kind === "staging" ? documentIds : taskIds).add(id);
    else if (r.type === "PROVIDER_BATCH_OPENED") for (const id of r.taskIds) taskIds.add(id);
  }
  return { documentIds: [...documentIds].filter((id) => UUID.test(id)), taskIds: [...taskIds] };
}

/** Whether a group's writes read or feed the result cache: tasks succeeded or dispatched, or an estimate (which leaves hits out). */
function needsCache(writes: Write[]): boolean {
  return writes.some(
    (w) =>
      w.type === "estimate" ||
      (w.type === "dispatch" && w.kind === "analysis") ||
      (w.type === "settleTasks" && [...w.rows.values()].some((o) => o.status === "succeeded")),
  );
}

/** The ids of the tasks of `runId` the outbox enqueues so far, in order. */
function analysisUnits(outbox: OutboxItem[], runId: number): string[] {
  return outbox.flatMap((o) => (o.type === "enqueueAnalysis" && o.runId === runId ? o.units.map((u) => u.id) : []));
}

/** Takes the jobs of tasks answered from the cache out of the outbox. */
function withholdJobs(outbox: OutboxItem[], ids: Set<string>) {
  for (let i = outbox.length - 1; i >= 0; i--) {
    const o = outbox[i]!;
    if (o.type !== "enqueueAnalysis") continue;
    const units = o.units.filter((u) => !ids.has(u.id));
    if (units.length) outbox[i] = { ...o, units };
    else outbox.splice(i, 1);
  }
}

/** Carries out one planned write, checking the rows it touched against what the machine counted. */
async function carryOut(sql: Sql, batchId: string, lane: AnalysisMode, w: Write, outbox: OutboxItem[], cache: CacheScope | null): Promise<void> {
  switch (w.type) {
    case "resetOutput":
      return resetOutput(sql, batchId);
    case "beginStaging":
      return expectCount("documents to stage", await beginStaging(sql, batchId, w.runId), w.expected);
    case "insertDocuments":
      return expectCount(
        "documents added",
        isStagedUpload(w.documents) ? await moveUploadIntoBatch(sql, batchId, w.ids, w.documents) : await insertDocuments(sql, batchId, w.ids, w.documents),
        w.ids.length,
      );
    case "deleteDocuments":
      return expectCount("documents removed", await deleteDocuments(sql, batchId, w.ids), w.ids.length);
    case "settleDocuments":
      return expectCount("documents settled", await settleDocuments(sql, batchId, w.rows), w.rows.size);
    case "settleTasks": {
      expectCount("tasks settled", await settleTasks(sql, batchId, w.rows), w.rows.size);
      const succeeded = [...w.rows].filter(([, o]) => o.status === "succeeded").map(([id]) => id);
      if (cache && succeeded.length) await populateCache(sql, batchId, succeeded, cache);
      return;
    }
    case "settleCached":
      return expectCount("tasks completed from the cache", await settleCached(sql, batchId, w.rows), w.rows.size);
    case "releaseWithdrawn":
      await releaseWithdrawn(sql, batchId, w.kind, w.rows);
      return;
    case "startTasks":
      return expectCount("tasks started", await startTasks(sql, batchId, w.ids, w.reserveUsd), new Set(w.ids).size);
    case "estimate":
      return;
    case "cancelPending":
      await cancelPending(sql, batchId, w.kind, w.runId);
      return;
    case "createTasks":
      return expectCount("tasks created", await createTasks(sql, batchId, w.runId, w.scope), w.expected);
    case "dispatch": {
      const units = await dispatchUnits(sql, batchId, w.kind, w.runId, w.count);
      expectCount(w.kind === "staging" ? "documents dispatched" : "tasks dispatched", units.length, w.count);
      if (w.kind === "staging") outbox.push({ type: "enqueueStaging", runId: w.runId, units });
      else outbox.push({ type: "enqueueAnalysis", runId: w.runId, units, ...(lane === "batch" && { lane }) });
      return;
    }
    case "openProviderBatch":
      await openProviderBatch(sql, batchId, w);
      return;
    case "updateProviderBatch":
      await updateProviderBatch(sql, batchId, w.update);
      return;
    case "withdrawJobs":
      outbox.push({ type: "withdrawJobs", runId: w.runId, kind: w.kind });
      return;
  }
}

function expectCount(what: string, actual: number, expected: number) {
  if (actual !== expected) throw new InvariantError(`${what}: the machine counted ${expected}, the database has ${actual}`);
}

/** The history entry of a snapshot upgraded on load. */
function upgradeRow(seq: number, state: string, version: number, upgrade: SnapshotUpgradeRecord): HistoryRow {
  return {
    seq,
    outcome: "upgraded",
    eventType: "MACHINE_UPGRADED",
    source: "system",
    fromState: state,
    toState: state,
    version,
    reason: upgrade.steps.join("; "),
    context: { from_machine_version: upgrade.from, to_machine_version: upgrade.to },
    event: { type: "MACHINE_UPGRADED", from: upgrade.from, to: upgrade.to },
  };
}


/** The analysis definition a batch was created with. */
async function readAnalysis(sql: Sql, batchId: string): Promise<PricedAnalysis> {
  const { rows } = await sql.query<{ analysis: PricedAnalysis }>(`SELECT analysis FROM batches WHERE id = $1::uuid`, [batchId]);
  return rows[0]?.analysis ?? {};
}

function sourceOf(s: Submission) {
  return s.kind === "report" ? "worker" : s.kind === "system" || s.kind === "cacheHit" ? "system" : s.source;
}
