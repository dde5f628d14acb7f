/**
 * The actor store: the one writer of batch state.
 *
 * For a group of submissions to one batch it locks the batch row, rehydrates the stored
 * snapshot, lets the machine decide each submission in turn, and writes — in the same
 * transaction — the new snapshot and version, the projected columns (state, counters),
 * the rows the effects touch (documents, tasks), one history entry per submission, and the
 * outbox of queue work. Nothing is kept in memory between groups: every group starts from
 * what PostgreSQL holds, so any number of processes may call it at once.
 *
 * Lock order, to stay free of deadlocks: the queue lock (when taken) before any batch row;
 * one batch row at a time, except promotion, which runs under the queue lock. A group that
 * finds out halfway that it changes queue membership without holding the queue lock is
 * rolled back and run again with it, which is rare: only the report that ends a run does so.
 */
import { createHash } from "node:crypto";
import type { Action, MachineEvent, PriorStatus, Source, WorkerReport, WorkKind } from "./machines/batch.events";
import type { BatchContext, Effect } from "./machines/batch.machine";
import { MACHINE_VERSION } from "./machines/batch.machine";
import {
  allowedActions,
  decide,
  initialSnapshot,
  stateName,
  stateOf,
  toStored,
  type BatchSnapshot,
  type StoredSnapshot,
} from "./machines/batch.transition";
import { batchesToStart, lockQueue, placeInQueue, renumberQueue } from "./batch-queue";
import type { Prisma, PrismaClient } from "./db";
import type { Logger } from "./logger";
import { loadSnapshot, type SnapshotUpgradeRecord } from "./stored-snapshot";

type Tx = Prisma.TransactionClient;

/** A document as stored when it is added. */
export interface NewDocument {
  name: string;
  mimeType: string;
  content: Buffer;
}

/** One thing asked of a batch. */
export type Submission =
  | { kind: "action"; action: Action; source: Source; reason?: string; expectedVersion?: number; position?: number; context?: Record<string, unknown> }
  | { kind: "report"; report: WorkerReport }
  | { kind: "system"; event: MachineEvent; reason?: string }
  | { kind: "addDocuments"; documents: NewDocument[]; source: Source; expectedVersion?: number }
  | { kind: "removeDocuments"; documentIds: string[]; source: Source; expectedVersion?: number };

export type Outcome = "accepted" | "refused" | "ignored" | "version_conflict" | "not_found";

export interface SubmissionResult {
  outcome: Outcome;
  /** State before and after this submission, e.g. `ANALYZING.running`. */
  from: string;
  to: string;
  version: number;
  allowedActions: Action[];
  reason?: string;
  /** Ids of documents added by an `addDocuments` submission. */
  documentIds?: string[];
}

/** Work for BullMQ, stored with the transition and dispatched after commit. */
export type OutboxEffect =
  | { type: "enqueueStaging"; batchId: string; runId: number; documentIds: string[] }
  | { type: "enqueueAnalysis"; batchId: string; runId: number; taskIds: string[] }
  | { type: "withdrawJobs"; batchId: string; runId: number; kind: WorkKind };

/** What one committed group changed; handed to commit listeners (effects relay, live stream). */
export interface Commit {
  batchId: string;
  version: number;
  status: string;
  substate: string | null;
  deleted: boolean;
  transitions: { from: string; event: string; to: string; version: number; effects: string[] }[];
  outboxIds: bigint[];
}

export interface CreateBatchRecord {
  name: string;
  analysis: Record<string, unknown>;
  priority: number;
  window: number;
  stagingTolerance: number;
  failureTolerance: number;
  documents: NewDocument[];
}

export interface ActorStoreDeps {
  prisma: PrismaClient;
  logger: Logger;
  maxRunningBatches: number;
  /** Called after every commit; must not throw. */
  onCommit?: (commit: Commit) => void;
  /** Test seam: runs inside the transaction after every write, before commit. */
  beforeCommit?: (tx: Tx, batchId: string) => Promise<void>;
}

/** The PostgreSQL NOTIFY channel on which every committed batch change is announced. */
export const BATCH_CHANNEL = "tranche_batches";

const TX_OPTIONS = { isolationLevel: "ReadCommitted", maxWait: 10_000, timeout: 60_000 } as const;
const MAX_ATTEMPTS = 8;

class NeedsQueueLock extends Error {}

/** Where a batch that entered the queue goes: a requested position, or by default the end. */
interface Placement {
  position?: number;
}

/** A broken promise between the machine's counters and the stored rows: roll back, never write. */
export class InvariantError extends Error {}

export function taskIdFor(batchId: string, runId: number, documentId: string): string {
  return `${batchId}-r${runId}-${documentId}`;
}

interface BatchRow {
  id: string;
  snapshot: StoredSnapshot;
  machineVersion: number;
  version: number;
  historySeq: number;
  priority: number;
}

interface HistoryRow {
  batchId: string;
  seq: number;
  /** `upgraded`: the stored snapshot was brought to this machine's version; the state and version are unchanged. */
  outcome: Outcome | "upgraded";
  eventType: string;
  source: Source;
  fromState: string;
  toState: string;
  version: number;
  reason: string | null;
  context: Prisma.InputJsonValue | undefined;
  event: Prisma.InputJsonValue;
}

/** A submission turned into a machine event, plus the data to record if the machine accepts it. */
interface Prepared {
  event: MachineEvent | null;
  source: Source;
  eventType: string;
  reason: string | null;
  context?: Record<string, unknown>;
  expectedVersion?: number;
  /** Ids the report names (withdrawn jobs), for `releaseWithdrawn`. */
  ids?: string[];
  record?: (tx: Tx) => Promise<void>;
  addDocuments?: NewDocument[];
  removeDocumentIds?: string[];
  /** Why a report is ignored before it reaches the machine (e.g. it names nothing of this run). */
  ignoredBecause?: string;
}

/** One transaction's state: whether it holds the queue lock, and the commits to announce after it. */
interface Session {
  tx: Tx;
  withQueueLock: boolean;
  commits: Commit[];
}

const isQueueMember = (s: BatchSnapshot) => stateOf(s).status === "ANALYZING";
const isQueued = (s: BatchSnapshot) => {
  const { status, substate } = stateOf(s);
  return status === "ANALYZING" && substate === "queued";
};
const json = (v: unknown) => JSON.stringify(v);

export function createActorStore(deps: ActorStoreDeps) {
  const { prisma, logger } = deps;

  /** Inserts a new batch in SAVED with its documents and a `created` history entry. */
  async function createBatch(record: CreateBatchRecord): Promise<string> {
    const input = {
      documents: record.documents.length,
      window: record.window,
      stagingTolerance: record.stagingTolerance,
      failureTolerance: record.failureTolerance,
    };
    const snapshot = initialSnapshot(input);
    const batch = await prisma.$transaction(async (tx) => {
      const created = await tx.batch.create({
        data: {
          name: record.name,
          status: "SAVED",
          version: 1,
          machineVersion: MACHINE_VERSION,
          snapshot: toStored(snapshot) as Prisma.InputJsonValue,
          priority: record.priority,
          historySeq: 1,
          stagingProgress: snapshot.context.staging as unknown as Prisma.InputJsonValue,
          analysis: record.analysis as Prisma.InputJsonValue,
        },
      });
      await insertDocuments(tx, created.id, 0, record.documents);
      await tx.historyEntry.create({
        data: {
          batchId: created.id,
          seq: 1,
          outcome: "accepted",
          eventType: "created",
          source: "user",
          fromState: "",
          toState: "SAVED",
          version: 1,
          event: { type: "created", input } as Prisma.InputJsonValue,
        },
      });
      const change = { batch_id: created.id, version: 1, status: "SAVED", substate: null, deleted: false, at: Date.now() };
      await tx.$queryRaw`SELECT pg_notify(${BATCH_CHANNEL}, ${json(change)})::text`;
      return created;
    }, TX_OPTIONS);
    deps.onCommit?.({ batchId: batch.id, version: 1, status: "SAVED", substate: null, deleted: false, transitions: [], outboxIds: [] });
    logger.info({ batchId: batch.id, to: "SAVED", version: 1, documents: record.documents.length }, "batch created");
    return batch.id;
  }

  /** Applies a group of submissions to one batch in one transaction; one result per submission, in order. */
  async function apply(batchId: string, submissions: Submission[]): Promise<SubmissionResult[]> {
    let withQueueLock = submissions.some((s) => s.kind !== "report");
    for (let attempt = 1; ; attempt++) {
      const commits: Commit[] = [];
      try {
        const results = await prisma.$transaction(async (tx) => {
          if (withQueueLock) await lockQueue(tx);
          const session = { tx, withQueueLock, commits };
          const out = await applyToBatch(session, batchId, submissions);
          if (out.queueChanged) await rebalanceQueue(session, out.placement ? { batchId, placement: out.placement } : undefined);
          await deps.beforeCommit?.(tx, batchId);
          return out.results;
        }, TX_OPTIONS);
        for (const commit of commits) announce(commit);
        return results;
      } catch (err) {
        if (err instanceof NeedsQueueLock && !withQueueLock) {
          withQueueLock = true;
          continue;
        }
        if (attempt < MAX_ATTEMPTS && isTransient(err)) {
          await sleep(Math.random() * 20 * attempt);
          continue;
        }
        throw err;
      }
    }
  }

  async function applyToBatch(session: Session, batchId: string, submissions: Submission[]) {
    const { tx } = session;
    const [row] = await tx.$queryRaw<BatchRow[]>`
      SELECT id::text, snapshot, machine_version AS "machineVersion", version, history_seq AS "historySeq", priority
      FROM batches WHERE id = ${batchId}::uuid FOR UPDATE`;
    if (!row) {
      const results = submissions.map((): SubmissionResult => ({ outcome: "not_found", from: "", to: "", version: 0, allowedActions: [] }));
      return { results, queueChanged: false, placement: null };
    }
    const loaded = loadSnapshot(batchId, row.snapshot, row.machineVersion);
    let snapshot = loaded.snapshot;
    let version = row.version;
    let seq = row.historySeq;
    const history: HistoryRow[] = [];
    if (loaded.upgrade) history.push(upgradeRow(batchId, ++seq, stateName(snapshot), version, loaded.upgrade));
    const outbox: OutboxEffect[] = [];
    const transitions: Commit["transitions"] = [];
    const results: SubmissionResult[] = [];
    const wasMember = isQueueMember(snapshot);
    let enteredQueue = false;
    let enteredQueueAt: number | undefined;
    let deleted = false;

    for (const submission of submissions) {
      const from = stateName(snapshot);
      if (deleted) {
        results.push({ outcome: "not_found", from, to: from, version, allowedActions: [] });
        continue;
      }
      const prepared = await prepare(tx, batchId, snapshot.context, submission);
      const refuse = (outcome: Outcome, reason: string) => {
        seq += 1;
        history.push(historyRow(batchId, seq, outcome, prepared, from, from, version, reason));
        results.push({ outcome, from, to: from, version, allowedActions: allowedActions(snapshot), reason });
      };
      if (prepared.expectedVersion !== undefined && prepared.expectedVersion !== version) {
        refuse("version_conflict", `expected version ${prepared.expectedVersion}, batch is at ${version}`);
        continue;
      }
      const passive: Outcome = prepared.source === "user" ? "refused" : "ignored";
      if (!prepared.event) {
        refuse(passive, prepared.ignoredBecause ?? "nothing to do");
        continue;
      }
      const decision = decide(snapshot, prepared.event);
      if (!decision.accepted) {
        refuse(passive, refusalReason(snapshot, prepared));
        continue;
      }
      const next = decision.snapshot;
      if (isQueueMember(snapshot) !== isQueueMember(next) || (isQueued(next) && !isQueued(snapshot))) {
        if (!session.withQueueLock) throw new NeedsQueueLock();
      }
      if (isQueued(next) && !isQueued(snapshot)) {
        enteredQueue = true;
        enteredQueueAt = prepared.event.type === "resume" ? prepared.event.position : undefined;
      }
      version += 1;
      seq += 1;
      await prepared.record?.(tx);
      if (prepared.addDocuments) {
        const ids = await insertDocuments(tx, batchId, await nextPosition(tx, batchId), prepared.addDocuments);
        results.push({ outcome: "accepted", from, to: stateName(next), version, allowedActions: allowedActions(next), documentIds: ids });
      } else {
        results.push({ outcome: "accepted", from, to: stateName(next), version, allowedActions: allowedActions(next) });
      }
      if (prepared.removeDocumentIds) {
        await tx.$executeRaw`DELETE FROM documents WHERE batch_id = ${batchId}::uuid AND id::text = ANY(${prepared.removeDocumentIds})`;
      }
      for (const effect of decision.effects) {
        if (effect.type === "deleteBatch") deleted = true;
        await carryOut(tx, batchId, next.context, effect, prepared, outbox);
      }
      history.push(historyRow(batchId, seq, "accepted", prepared, from, stateName(next), version, prepared.reason));
      transitions.push({ from, event: prepared.eventType, to: stateName(next), version, effects: decision.effects.map((e) => e.type) });
      snapshot = next;
    }

    const { status, substate } = stateOf(snapshot);
    let outboxIds: bigint[] = [];
    if (deleted) {
      await tx.$executeRaw`DELETE FROM batches WHERE id = ${batchId}::uuid`;
    } else {
      const ctx = snapshot.context;
      // updateMany, not update: it returns a count instead of the whole row and its snapshot.
      await tx.batch.updateMany({
        where: { id: batchId },
        data: {
          snapshot: toStored(snapshot) as Prisma.InputJsonValue,
          machineVersion: MACHINE_VERSION,
          version,
          historySeq: seq,
          status,
          substate,
          runId: ctx.runId,
          ...ctx.tasks,
          stagingProgress: ctx.staging as unknown as Prisma.InputJsonValue,
          lastError: ctx.lastError,
          updatedAt: new Date(),
          ...(status === "ANALYZING" ? (substate === "running" ? { queuePosition: 0 } : {}) : { queuePosition: null }),
        },
      });
      if (history.length) await tx.historyEntry.createMany({ data: history });
      if (outbox.length) {
        const created = await tx.effect.createManyAndReturn({
          data: outbox.map((e) => ({ batchId, version, type: e.type, payload: e as unknown as Prisma.InputJsonValue })),
          select: { id: true },
        });
        outboxIds = created.map((c) => c.id);
      }
    }
    if (transitions.length || deleted) {
      // Delivered by PostgreSQL only if this transaction commits, to every listening process.
      const change = { batch_id: batchId, version, status: deleted ? "DELETED" : status, substate, deleted, at: Date.now() };
      await tx.$queryRaw`SELECT pg_notify(${BATCH_CHANNEL}, ${json(change)})::text`;
      session.commits.push({ batchId, version, status: deleted ? "DELETED" : status, substate, deleted, transitions, outboxIds });
    }
    const placement: Placement | null = enteredQueue && isQueued(snapshot) ? { position: enteredQueueAt } : null;
    return { results, queueChanged: wasMember !== isQueueMember(snapshot) || placement !== null, placement };
  }

  /** Places a batch that entered the queue, closes gaps, and starts queued batches while slots are free. */
  async function rebalanceQueue(session: Session, entered?: { batchId: string; placement: Placement }) {
    const { tx } = session;
    if (entered) {
      const [row] = await tx.$queryRaw<{ priority: number }[]>`SELECT priority FROM batches WHERE id = ${entered.batchId}::uuid`;
      await placeInQueue(tx, entered.batchId, row?.priority ?? 0, entered.placement.position);
    } else {
      await renumberQueue(tx);
    }
    for (const id of await batchesToStart(tx, deps.maxRunningBatches)) {
      await applyToBatch(session, id, [{ kind: "system", event: { type: "START" }, reason: "a running slot is free" }]);
    }
    await renumberQueue(tx);
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
  async function applyQueueSweep(): Promise<void> {
    const commits: Commit[] = [];
    await prisma.$transaction(async (tx) => {
      await lockQueue(tx);
      await rebalanceQueue({ tx, withQueueLock: true, commits });
    }, TX_OPTIONS);
    for (const commit of commits) announce(commit);
  }

  return { createBatch, apply, rebalance: applyQueueSweep };
}

export type ActorStore = ReturnType<typeof createActorStore>;

/** Turns a submission into the machine event it stands for, looking up the unit a report names. */
async function prepare(tx: Tx, batchId: string, context: BatchContext, s: Submission): Promise<Prepared> {
  switch (s.kind) {
    case "action": {
      const event: MachineEvent = s.action === "resume" ? { type: "resume", position: s.position } : { type: s.action };
      const ctx = { ...(s.context ?? {}), ...(s.reason ? { reason: s.reason } : {}) };
      return { event, source: s.source, eventType: s.action, reason: s.reason ?? null, context: Object.keys(ctx).length ? ctx : undefined, expectedVersion: s.expectedVersion };
    }
    case "system":
      return { event: s.event, source: "system", eventType: s.event.type, reason: s.reason ?? null };
    case "addDocuments":
      return {
        event: { type: "DOCUMENTS_ADDED", count: s.documents.length },
        source: s.source,
        eventType: "DOCUMENTS_ADDED",
        reason: null,
        context: { names: s.documents.map((d) => d.name) },
        expectedVersion: s.expectedVersion,
        addDocuments: s.documents,
      };
    case "removeDocuments": {
      const found = await tx.$queryRaw<{ id: string }[]>`
        SELECT id::text FROM documents WHERE batch_id = ${batchId}::uuid AND id::text = ANY(${s.documentIds})`;
      return {
        event: found.length ? { type: "DOCUMENTS_REMOVED", count: found.length } : null,
        ignoredBecause: "no such document in this batch",
        source: s.source,
        eventType: "DOCUMENTS_REMOVED",
        reason: null,
        context: { documentIds: found.map((f) => f.id) },
        expectedVersion: s.expectedVersion,
        removeDocumentIds: found.map((f) => f.id),
      };
    }
    case "report":
      return prepareReport(tx, batchId, context, s.report);
  }
}

async function prepareReport(tx: Tx, batchId: string, context: BatchContext, r: WorkerReport): Promise<Prepared> {
  const base = { source: "worker" as const, eventType: r.type, reason: null };
  switch (r.type) {
    case "DOCUMENT_STAGED":
    case "DOCUMENT_STAGE_FAILED": {
      const from = await documentStatus(tx, batchId, r.documentId, r.runId);
      const record =
        r.type === "DOCUMENT_STAGED"
          ? (t: Tx) =>
              t.$executeRaw`UPDATE documents SET stage_status = 'succeeded', stage_error = NULL, text = ${r.text},
                chunks = ${json(r.chunks)}::jsonb, token_count = ${r.tokenCount}, text_sha256 = ${r.textSha256}, updated_at = now()
                WHERE id = ${r.documentId}::uuid`.then(() => undefined)
          : (t: Tx) =>
              t.$executeRaw`UPDATE documents SET stage_status = 'failed', stage_error = ${r.error}, updated_at = now()
                WHERE id = ${r.documentId}::uuid`.then(() => undefined);
      const event: MachineEvent =
        r.type === "DOCUMENT_STAGED"
          ? { type: r.type, runId: r.runId, documentId: r.documentId, from }
          : { type: r.type, runId: r.runId, documentId: r.documentId, from, error: r.error };
      return { ...base, event, record, context: { documentId: r.documentId, runId: r.runId, ...(r.type === "DOCUMENT_STAGE_FAILED" ? { error: r.error } : {}) } };
    }
    case "TASK_COMPLETED":
    case "TASK_FAILED": {
      const from = await taskStatus(tx, batchId, r.taskId, r.runId);
      const record =
        r.type === "TASK_COMPLETED"
          ? (t: Tx) =>
              t.$executeRaw`UPDATE tasks SET status = 'succeeded', error = NULL, output = ${json(r.output ?? null)}::jsonb,
                input_tokens = ${r.inputTokens ?? null}, output_tokens = ${r.outputTokens ?? null},
                requests = ${r.requests ?? null}, cached_input_tokens = ${r.cachedInputTokens ?? null},
                cost_usd = ${r.costUsd ?? null}::float8, strategy = ${r.strategy ?? null},
                latency_ms = ${r.latencyMs ?? null}, finished_at = now(), updated_at = now()
                WHERE id = ${r.taskId}`.then(() => undefined)
          : (t: Tx) =>
              t.$executeRaw`UPDATE tasks SET status = 'failed', error = ${r.error}, latency_ms = ${r.latencyMs ?? null},
                input_tokens = ${r.inputTokens ?? null}, output_tokens = ${r.outputTokens ?? null},
                requests = ${r.requests ?? null}, cached_input_tokens = ${r.cachedInputTokens ?? null},
                cost_usd = ${r.costUsd ?? null}::float8, strategy = ${r.strategy ?? null},
                finished_at = now(), updated_at = now()
                WHERE id = ${r.taskId}`.then(() => undefined);
      const event: MachineEvent =
        r.type === "TASK_COMPLETED"
          ? { type: r.type, runId: r.runId, taskId: r.taskId, from }
          : { type: r.type, runId: r.runId, taskId: r.taskId, from, error: r.error };
      return { ...base, event, record, context: { taskId: r.taskId, runId: r.runId, ...(r.type === "TASK_FAILED" ? { error: r.error } : {}) } };
    }
    case "TASK_STARTED": {
      const from = await taskStatus(tx, batchId, r.taskId, r.runId);
      return { ...base, event: { type: r.type, runId: r.runId, taskId: r.taskId, from }, context: { taskId: r.taskId, runId: r.runId } };
    }
    case "FATAL_ERROR":
      return { ...base, event: { type: r.type, runId: r.runId, error: r.error }, context: { runId: r.runId, error: r.error } };
    case "JOBS_WITHDRAWN": {
      const running =
        r.kind === "staging"
          ? await tx.$queryRaw<{ id: string }[]>`SELECT id::text FROM documents WHERE batch_id = ${batchId}::uuid
              AND stage_run_id = ${r.runId} AND stage_status = 'running' AND id::text = ANY(${r.ids})`
          : await tx.$queryRaw<{ id: string }[]>`SELECT id FROM tasks WHERE batch_id = ${batchId}::uuid
              AND run_id = ${r.runId} AND status = 'running' AND id = ANY(${r.ids})`;
      const ids = running.map((x) => x.id);
      return {
        ...base,
        event: ids.length && r.runId === context.runId ? { type: r.type, runId: r.runId, kind: r.kind, count: ids.length } : null,
        ignoredBecause: r.runId !== context.runId ? staleReason(r.runId, context.runId) : "none of the named jobs is in flight",
        ids,
        context: { runId: r.runId, kind: r.kind, withdrawn: ids.length, reported: r.ids.length },
      };
    }
  }
}

async function documentStatus(tx: Tx, batchId: string, documentId: string, runId: number): Promise<PriorStatus> {
  const [row] = await tx.$queryRaw<{ stage_status: string | null; stage_run_id: number | null }[]>`
    SELECT stage_status, stage_run_id FROM documents WHERE id = ${documentId}::uuid AND batch_id = ${batchId}::uuid`;
  if (!row || row.stage_run_id !== runId || !row.stage_status) return "missing";
  return row.stage_status as PriorStatus;
}

async function taskStatus(tx: Tx, batchId: string, taskId: string, runId: number): Promise<PriorStatus> {
  const [row] = await tx.$queryRaw<{ status: string; run_id: number }[]>`
    SELECT status, run_id FROM tasks WHERE id = ${taskId} AND batch_id = ${batchId}::uuid`;
  if (!row || row.run_id !== runId) return "missing";
  return row.status as PriorStatus;
}

/** Carries out one effect inside the transaction: rows to write now, queue work to dispatch after commit. */
async function carryOut(tx: Tx, batchId: string, context: BatchContext, effect: Effect, prepared: Prepared, outbox: OutboxEffect[]) {
  switch (effect.type) {
    case "resetOutput":
      await tx.$executeRaw`DELETE FROM tasks WHERE batch_id = ${batchId}::uuid`;
      await tx.$executeRaw`UPDATE documents SET stage_run_id = NULL, stage_status = NULL, stage_error = NULL, text = NULL,
        chunks = NULL, token_count = NULL, text_sha256 = NULL, updated_at = now() WHERE batch_id = ${batchId}::uuid`;
      return;
    case "beginStaging": {
      const n = await tx.$executeRaw`UPDATE documents SET stage_run_id = ${effect.runId}, stage_status = 'pending', updated_at = now()
        WHERE batch_id = ${batchId}::uuid`;
      expectCount("documents to stage", n, context.staging.total);
      return;
    }
    case "dispatchStaging": {
      const rows = await tx.$queryRaw<{ id: string }[]>`
        UPDATE documents SET stage_status = 'running', updated_at = now()
        WHERE id IN (SELECT id FROM documents WHERE batch_id = ${batchId}::uuid AND stage_run_id = ${effect.runId}
                     AND stage_status = 'pending' ORDER BY position LIMIT ${effect.count})
        RETURNING id::text`;
      expectCount("documents dispatched", rows.length, effect.count);
      outbox.push({ type: "enqueueStaging", batchId, runId: effect.runId, documentIds: rows.map((r) => r.id) });
      return;
    }
    case "createTasks": {
      const n =
        effect.scope === "staged"
          ? await tx.$executeRaw`
              INSERT INTO tasks (id, batch_id, run_id, document_id, position, status, updated_at)
              SELECT ${batchId} || '-r' || ${effect.runId}::int || '-' || d.id::text, d.batch_id, ${effect.runId}, d.id, d.position, 'pending', now()
              FROM documents d WHERE d.batch_id = ${batchId}::uuid AND d.stage_status = 'succeeded'`
          : await tx.$executeRaw`
              INSERT INTO tasks (id, batch_id, run_id, document_id, position, status, updated_at)
              SELECT ${batchId} || '-r' || ${effect.runId}::int || '-' || t.document_id::text, t.batch_id, ${effect.runId}, t.document_id, t.position, 'pending', now()
              FROM tasks t WHERE t.batch_id = ${batchId}::uuid AND t.run_id = ${effect.runId - 1} AND t.status <> 'succeeded'`;
      expectCount("tasks created", n, context.tasks.total);
      return;
    }
    case "dispatchTasks": {
      const rows = await tx.$queryRaw<{ id: string }[]>`
        UPDATE tasks SET status = 'running', updated_at = now()
        WHERE id IN (SELECT id FROM tasks WHERE batch_id = ${batchId}::uuid AND run_id = ${effect.runId} AND status = 'pending'
                     ORDER BY position LIMIT ${effect.count})
        RETURNING id`;
      expectCount("tasks dispatched", rows.length, effect.count);
      outbox.push({ type: "enqueueAnalysis", batchId, runId: effect.runId, taskIds: rows.map((r) => r.id) });
      return;
    }
    case "cancelPending":
      if (effect.kind === "staging") {
        await tx.$executeRaw`UPDATE documents SET stage_status = 'cancelled', updated_at = now()
          WHERE batch_id = ${batchId}::uuid AND stage_run_id = ${effect.runId} AND stage_status = 'pending'`;
      } else {
        await tx.$executeRaw`UPDATE tasks SET status = 'cancelled', updated_at = now()
          WHERE batch_id = ${batchId}::uuid AND run_id = ${effect.runId} AND status = 'pending'`;
      }
      return;
    case "withdrawJobs":
      outbox.push({ type: "withdrawJobs", batchId, runId: effect.runId, kind: effect.kind });
      return;
    case "releaseWithdrawn": {
      const ids = prepared.ids ?? [];
      if (effect.kind === "staging") {
        await tx.$executeRaw`UPDATE documents SET stage_status = ${effect.to}, updated_at = now()
          WHERE batch_id = ${batchId}::uuid AND id::text = ANY(${ids}) AND stage_status = 'running'`;
      } else {
        await tx.$executeRaw`UPDATE tasks SET status = ${effect.to}, updated_at = now()
          WHERE batch_id = ${batchId}::uuid AND id = ANY(${ids}) AND status = 'running'`;
      }
      return;
    }
    case "taskStarted":
      await tx.$executeRaw`UPDATE tasks SET attempts = attempts + 1, updated_at = now() WHERE id = ${effect.taskId} AND batch_id = ${batchId}::uuid`;
      return;
    case "deleteBatch":
      return;
  }
}

function expectCount(what: string, actual: number, expected: number) {
  if (actual !== expected) throw new InvariantError(`${what}: the machine counted ${expected}, the database has ${actual}`);
}

async function insertDocuments(tx: Tx, batchId: string, firstPosition: number, documents: NewDocument[]): Promise<string[]> {
  if (!documents.length) return [];
  const created = await tx.document.createManyAndReturn({
    data: documents.map((d, i) => ({
      batchId,
      position: firstPosition + i,
      name: d.name,
      mimeType: d.mimeType,
      content: new Uint8Array(d.content),
      sizeBytes: d.content.length,
      sha256: createHash("sha256").update(d.content).digest("hex"),
    })),
    select: { id: true },
  });
  return created.map((c) => c.id);
}

async function nextPosition(tx: Tx, batchId: string): Promise<number> {
  const [row] = await tx.$queryRaw<{ n: number }[]>`
    SELECT COALESCE(max(position) + 1, 0)::int AS n FROM documents WHERE batch_id = ${batchId}::uuid`;
  return row?.n ?? 0;
}

function historyRow(
  batchId: string,
  seq: number,
  outcome: Outcome,
  p: Prepared,
  fromState: string,
  toState: string,
  version: number,
  reason: string | null,
): HistoryRow {
  return {
    batchId,
    seq,
    outcome,
    eventType: p.eventType,
    source: p.source,
    fromState,
    toState,
    version,
    reason,
    context: p.context as Prisma.InputJsonValue | undefined,
    event: (p.event ?? { type: p.eventType }) as Prisma.InputJsonValue,
  };
}

/** The history entry of a snapshot upgraded on load; written with the group that loaded it. */
function upgradeRow(batchId: string, seq: number, state: string, version: number, upgrade: SnapshotUpgradeRecord): HistoryRow {
  return {
    batchId,
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

function staleReason(reported: number, current: number): string {
  return `reported for run ${reported}; the batch is on run ${current}`;
}

/** Why the machine refused: the same words the API answers with. */
function refusalReason(snapshot: BatchSnapshot, p: Prepared): string {
  const { status } = stateOf(snapshot);
  const event = p.event;
  if (event && "runId" in event && event.runId !== snapshot.context.runId) return staleReason(event.runId, snapshot.context.runId);
  if (event && "from" in event && event.from !== "pending" && event.from !== "running") {
    return event.from === "missing" ? "names nothing of this run" : `already ${event.from} (duplicate report)`;
  }
  if (p.source === "user") return `Cannot ${p.eventType} batch in ${status} state`;
  return `${p.eventType} does not apply in ${status} state`;
}

function isTransient(err: unknown): boolean {
  const e = err as { code?: string; message?: string; cause?: { code?: string } } | null;
  if (!e) return false;
  if (e.code === "P2034" || e.code === "40001" || e.code === "40P01" || e.cause?.code === "40P01") return true;
  return /deadlock detected|could not serialize|write conflict/i.test(e.message ?? "");
}

function sleep(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
