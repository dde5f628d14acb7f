/**
 * The group planner: pure. Given a batch's stored snapshot, version and history position,
 * the submissions of one group and the stored status of every unit they name, it runs the
 * machine over each submission in order and returns what the group changes — the new
 * snapshot, each submission's own result, the history rows and the typed writes — without
 * touching the database. The store then carries the writes out set-based.
 *
 * Writes are merged by kind: the frequent ones (settling, starting and releasing units,
 * dispatching the next ones) collect into one write each until a structural effect (a reset,
 * a new run, a cancel, a withdrawal) needs the rows as they stand, which closes the segment.
 * Settling before dispatching within a segment gives the rows the machine's counts: units
 * leave `pending` only through dispatch or a report the machine counted.
 */
import type { Action, DocumentPlan, MachineEvent, TaskUsage, WorkerReport, WorkKind } from "../machines/batch.events";
import type { Effect } from "../machines/batch.machine";
import { allowedActions, decide, stateName, stateOf, type BatchSnapshot } from "../machines/batch.transition";
import type { HistoryOutcome, Outcome, PriorStatus, ReasonCode, Source, StateRef } from "../vocabulary";
import { cleanDeep, findUnstorable } from "./clean";
import type { NewDocument, Submission, SubmissionResult } from "./types";
import { boundHistoryContext } from "../history-context";
import { documentCount, isStagedUpload, type StagedUpload } from "../uploads/upload-spool";
import type { ProviderBatchUpdate } from "./sql/update-provider-batch";

/** A unit as stored when the group starts: its run, its status and how often it was dispatched. */
export interface UnitRow {
  runId: number | null;
  status: string | null;
  /** How often it was dispatched: the dispatch number of its current job. */
  dispatches?: number;
  /** Its result already waits in the inbox (it ran; a job must not start it again). */
  reported?: boolean;
  /** The provider batch carrying the task (batch lane). */
  providerBatchId?: string | null;
  /** A task: the most one start of it may cost (its document's worst case at the batch's price); null when unknown. */
  costMaxUsd?: number | null;
  /** A task: what it holds of the budget since it started (0: nothing). */
  heldUsd?: number;
}

/** The stored status of every unit the group's submissions name (absent: not in this batch). */
export interface UnitStatuses {
  documents: Map<string, UnitRow>;
  tasks: Map<string, UnitRow>;
}

export interface DocumentOutcome {
  status: "succeeded" | "failed";
  error: string | null;
  text: string | null;
  chunks: string | null;
  tokenCount: number | null;
  textSha256: string | null;
  plan: DocumentPlan | null;
}

export interface TaskOutcome {
  status: "succeeded" | "failed";
  error: string | null;
  output: string | null;
  inputTokens: number | null;
  outputTokens: number | null;
  requests: number | null;
  cachedInputTokens: number | null;
  costUsd: number | null;
  strategy: string | null;
  latencyMs: number | null;
}

/** A task answered from the result cache: the cached answer (JSON text) and what it cost when it was made. */
export interface CachedOutcome {
  output: string;
  savedUsd: number | null;
  strategy: string | null;
}

/** A write the store carries out, in plan order; each is one SQL statement (two for resetOutput). */
export type Write =
  | { type: "resetOutput" }
  | { type: "beginStaging"; runId: number; expected: number }
  | { type: "insertDocuments"; ids: string[]; documents: NewDocument[] | StagedUpload }
  | { type: "deleteDocuments"; ids: string[] }
  | { type: "settleDocuments"; rows: Map<string, DocumentOutcome> }
  | { type: "settleTasks"; rows: Map<string, TaskOutcome> }
  | { type: "settleCached"; rows: Map<string, CachedOutcome> }
  | { type: "releaseWithdrawn"; kind: WorkKind; rows: Map<string, "pending" | "cancelled"> }
  | { type: "startTasks"; ids: string[]; reserveUsd: number[] }
  | { type: "estimate"; runId: number }
  | { type: "cancelPending"; kind: WorkKind; runId: number }
  | { type: "createTasks"; runId: number; scope: "staged" | "unsucceeded"; expected: number }
  | { type: "dispatch"; kind: WorkKind; runId: number; count: number }
  | { type: "withdrawJobs"; kind: WorkKind; runId: number }
  | { type: "openProviderBatch"; id: string; runId: number; provider: string; taskIds: string[] }
  | { type: "updateProviderBatch"; update: ProviderBatchUpdate };

export interface HistoryRow {
  seq: number;
  outcome: HistoryOutcome;
  eventType: string;
  source: Source;
  /** The API key of the user who asked (`name (id)`), when there is one. */
  actor?: string | null;
  fromState: string;
  toState: string;
  version: number;
  reason: string | null;
  context: unknown;
  event: unknown;
}

export interface GroupPlan {
  snapshot: BatchSnapshot;
  version: number;
  seq: number;
  results: SubmissionResult[];
  history: HistoryRow[];
  writes: Write[];
  transitions: { from: string; event: string; to: string; version: number; effects: string[] }[];
  deleted: boolean;
  /** Queue membership changed (entered, left, or entered `queued`): the queue must be rebalanced. */
  queueChanged: boolean;
  /** Set when the batch entered the queue: where it asked to go (undefined: the default place). */
  placement: { position?: number } | null;
}

export interface PlanOptions {
  /** Makes a new document id; injected so the planner stays pure. */
  newId: () => string;
}

/** A submission turned into the machine event it stands for, plus what to record with it. */
interface Prepared {
  event: MachineEvent | null;
  source: Source;
  actor?: string | null;
  eventType: string;
  reason: string | null;
  context?: Record<string, unknown>;
  expectedVersion?: number;
  /** Why it never reaches the machine. */
  skip?: { outcome: Outcome; code: ReasonCode; reason: string };
  /** Units a withdrawal names that are still in flight; the tasks a provider batch opened with takes. */
  withdrawn?: string[];
}

const isQueueMember = (s: BatchSnapshot) => stateOf(s).status === "ANALYZING";
const isQueued = (s: BatchSnapshot) => {
  const { status, substate } = stateOf(s);
  return status === "ANALYZING" && substate === "queued";
};

/** Whether going from `start` to `end` changes queue membership (entered, left, or entered `queued`). */
export function queueChangedBetween(start: BatchSnapshot, end: BatchSnapshot): boolean {
  return isQueueMember(start) !== isQueueMember(end) || (isQueued(end) && !isQueued(start));
}

/**
 * Whether applying `submissions` to a batch in `snapshot` may change queue membership, so
 * that the group must hold the queue lock. Decided from the locked row before anything is
 * planned; conservative (it may say yes for a group that then changes nothing).
 */
export function mayChangeQueue(snapshot: BatchSnapshot, submissions: Submission[]): boolean {
  if (submissions.some((s) => s.kind !== "report")) return true;
  const { status } = stateOf(snapshot);
  if (status === "STAGING") {
    // A rerun's staging enters the queue by itself when its last document settles.
    const { staging, autoRun } = snapshot.context;
    const settles = submissions.filter((s) => s.kind === "report" && (s.report.type === "DOCUMENT_STAGED" || s.report.type === "DOCUMENT_STAGE_FAILED")).length;
    return autoRun && settles >= staging.pending + staging.running;
  }
  if (!isQueueMember(snapshot)) return false;
  const { tasks, failureTolerance } = snapshot.context;
  let settles = 0;
  let failures = 0;
  for (const s of submissions) {
    if (s.kind !== "report") continue;
    const t = s.report.type;
    if (t === "FATAL_ERROR") return true;
    if (t === "TASK_COMPLETED" || t === "TASK_FAILED") settles++;
    if (t === "TASK_FAILED") failures++;
  }
  return settles >= tasks.pending + tasks.running || (failures > 0 && tasks.failed + failures > failureTolerance * tasks.total);
}

export function planGroup(
  start: BatchSnapshot,
  startVersion: number,
  startSeq: number,
  submissions: Submission[],
  units: UnitStatuses,
  options: PlanOptions,
): GroupPlan {
  let snapshot = start;
  let version = startVersion;
  let seq = startSeq;
  let deleted = false;
  let enteredQueueAt: { position?: number } | null = null;
  const results: SubmissionResult[] = [];
  const history: HistoryRow[] = [];
  const transitions: GroupPlan["transitions"] = [];
  const writes = new WriteList();
  const docs = new Map(units.documents);
  const tasks = new Map(units.tasks);
  const allowedCache = new WeakMap<BatchSnapshot, Action[]>();
  const allowed = (s: BatchSnapshot, source: Source): Action[] => {
    if (source === "worker") return [];
    let a = allowedCache.get(s);
    if (!a) allowedCache.set(s, (a = allowedActions(s)));
    return a;
  };

  // Worker output is cleaned (not refused): a report must never be lost to a stray NUL.
  const cleaned = submissions.map((s) => (s.kind === "report" ? { ...s, report: cleanDeep(s.report) } : s));
  for (const submission of cleaned) {
    const from = stateName(snapshot);
    if (deleted) {
      results.push({ outcome: "not_found", code: "not_found", from, to: from, version, allowedActions: [] });
      continue;
    }
    const p = prepare(snapshot, submission, docs, tasks);
    const refuse = (outcome: Outcome, code: ReasonCode, reason: string) => {
      seq += 1;
      history.push(historyRow(seq, outcome, p, from, from, version, reason));
      results.push({ outcome, code, from, to: from, version, allowedActions: allowed(snapshot, p.source), reason });
    };
    if (p.skip?.code === "invalid_input") {
      refuse(p.skip.outcome, p.skip.code, p.skip.reason);
      continue;
    }
    if (p.expectedVersion !== undefined && p.expectedVersion !== version) {
      refuse("version_conflict", "version_conflict", `expected version ${p.expectedVersion}, batch is at ${version}`);
      continue;
    }
    if (p.skip || !p.event) {
      const skip = p.skip ?? { outcome: passive(p.source), code: "not_allowed" as const, reason: "nothing to do" };
      refuse(skip.outcome, skip.code, skip.reason);
      continue;
    }
    const decision = decide(snapshot, p.event);
    if (!decision.accepted) {
      const why = refusal(snapshot, p);
      refuse(passive(p.source), why.code, why.reason);
      continue;
    }
    const next = decision.snapshot;
    const exhausted = decision.effects.find((e) => e.type === "budgetExhausted");
    if (isQueued(next) && !isQueued(snapshot)) enteredQueueAt = { position: p.event.type === "resume" ? p.event.position : undefined };
    if (!isQueued(next)) enteredQueueAt = null;
    version += 1;
    seq += 1;
    const to = stateName(next);
    const result: SubmissionResult = exhausted
      ? // The worker's start is refused (it hands its job back); the pause itself is the system's.
        { outcome: "ignored", code: "over_budget", from, to, version, allowedActions: [], reason: next.context.lastError ?? "over budget" }
      : { outcome: "accepted", from, to, version, allowedActions: allowed(next, p.source) };
    recordFacts(submission, p, writes, docs, tasks, result, options);
    for (const effect of decision.effects) {
      if (effect.type === "deleteBatch") deleted = true;
      carryOut(effect, next, p, writes, docs, tasks);
    }
    results.push(result);
    history.push(
      exhausted
        ? historyRow(seq, "accepted", budgetPause(p, exhausted), from, to, version, next.context.lastError)
        : historyRow(seq, "accepted", p, from, to, version, p.reason),
    );
    transitions.push({ from, event: p.eventType, to, version, effects: decision.effects.map((e) => e.type) });
    snapshot = next;
  }

  const queueChanged = queueChangedBetween(start, snapshot);
  return {
    snapshot,
    version,
    seq,
    results,
    history,
    writes: writes.done(),
    transitions,
    deleted,
    queueChanged: queueChanged || deleted,
    placement: isQueued(snapshot) && !isQueued(start) ? (enteredQueueAt ?? {}) : null,
  };
}

const passive = (source: Source): Outcome => (source === "user" ? "refused" : "ignored");

/** The history entry of a pause the budget made: the system's, naming what was spent of what. */
function budgetPause(p: Prepared, e: Extract<Effect, { type: "budgetExhausted" }>): Prepared {
  return {
    ...p,
    source: "system",
    actor: null,
    eventType: "pause",
    context: {
      pause_reason: "budget",
      task_id: e.taskId,
      spent_usd: e.spentUsd,
      reserved_usd: e.reservedUsd,
      budget_usd: e.budgetUsd,
      needed_usd: e.neededUsd,
    },
  };
}

function prepare(snapshot: BatchSnapshot, s: Submission, docs: Map<string, UnitRow>, tasks: Map<string, UnitRow>): Prepared {
  switch (s.kind) {
    case "action": {
      const event: MachineEvent = s.action === "resume" ? { type: "resume", position: s.position } : { type: s.action };
      const ctx = { ...(s.context ?? {}), ...(s.reason ? { reason: s.reason } : {}) };
      const p: Prepared = {
        event,
        source: s.source,
        actor: s.actor,
        eventType: s.action,
        reason: s.reason ?? null,
        context: Object.keys(ctx).length ? ctx : undefined,
        expectedVersion: s.expectedVersion,
      };
      return guardStorable(p, { reason: s.reason, context: s.context });
    }
    case "system":
      return { event: s.event, source: "system", eventType: s.event.type, reason: s.reason ?? null };
    case "setBudget":
      return {
        event: { type: "SET_BUDGET", budgetUsd: s.budgetUsd },
        source: s.source,
        actor: s.actor,
        eventType: "budget",
        reason: null,
        context: { budget_usd: s.budgetUsd, previous_budget_usd: snapshot.context.budget.limitUsd },
        expectedVersion: s.expectedVersion,
      };
    case "cacheHit": {
      const event: MachineEvent = { type: "TASK_COMPLETED", runId: s.runId, taskId: s.taskId, from: priorOf(tasks.get(s.taskId), s.runId) };
      return { event, source: "system", eventType: "TASK_COMPLETED", reason: "answered from the result cache", context: { taskId: s.taskId, runId: s.runId, cached: true } };
    }
    case "addDocuments": {
      const p: Prepared = {
        event: { type: "DOCUMENTS_ADDED", count: documentCount(s.documents) },
        source: s.source,
        actor: s.actor,
        eventType: "DOCUMENTS_ADDED",
        reason: null,
        context: isStagedUpload(s.documents)
          ? { count: s.documents.count, first_names: s.documents.sampleNames }
          : { names: s.documents.map((d) => d.name) },
        expectedVersion: s.expectedVersion,
      };
      // A spooled upload's names and types were checked as it was read.
      if (isStagedUpload(s.documents)) return p;
      return guardStorable(p, { documents: s.documents.map((d) => ({ name: d.name, mimeType: d.mimeType })) });
    }
    case "removeDocuments": {
      const found = [...new Set(s.documentIds)].filter((id) => docs.has(id));
      return {
        event: found.length ? { type: "DOCUMENTS_REMOVED", count: found.length } : null,
        skip: found.length ? undefined : { outcome: passive(s.source), code: "no_such_document", reason: "no such document in this batch" },
        source: s.source,
        actor: s.actor,
        eventType: "DOCUMENTS_REMOVED",
        reason: null,
        context: { documentIds: found },
        expectedVersion: s.expectedVersion,
        withdrawn: found,
      };
    }
    case "report":
      return prepareReport(snapshot, s.report, docs, tasks);
  }
}

/** Refuses, on its own, a submission carrying text PostgreSQL cannot store. */
function guardStorable(p: Prepared, fields: Record<string, unknown>): Prepared {
  const bad = findUnstorable(fields);
  if (!bad) return p;
  return {
    ...p,
    context: cleanDeep(p.context),
    reason: null,
    skip: { outcome: "invalid", code: "invalid_input", reason: `${bad}: contains a character that cannot be stored (NUL or a lone surrogate)` },
  };
}

function priorOf(row: UnitRow | undefined, runId: number): PriorStatus {
  if (!row || row.runId !== runId || !row.status) return "missing";
  return row.status as PriorStatus;
}

function prepareReport(snapshot: BatchSnapshot, r: WorkerReport, docs: Map<string, UnitRow>, tasks: Map<string, UnitRow>): Prepared {
  const base = { source: "worker" as const, eventType: r.type, reason: null };
  switch (r.type) {
    case "DOCUMENT_STAGED":
    case "DOCUMENT_STAGE_FAILED": {
      const from = priorOf(docs.get(r.documentId), r.runId);
      const event: MachineEvent =
        r.type === "DOCUMENT_STAGED"
          ? { type: r.type, runId: r.runId, documentId: r.documentId, from }
          : { type: r.type, runId: r.runId, documentId: r.documentId, from, error: r.error };
      return { ...base, event, context: { documentId: r.documentId, runId: r.runId, ...(r.type === "DOCUMENT_STAGE_FAILED" ? { error: r.error } : {}) } };
    }
    case "TASK_COMPLETED":
    case "TASK_FAILED": {
      const row = tasks.get(r.taskId);
      const from = priorOf(row, r.runId);
      const facts = { usage: taskUsageOf(r), ...(row?.heldUsd ? { heldUsd: row.heldUsd } : {}) };
      const event: MachineEvent =
        r.type === "TASK_COMPLETED"
          ? { type: r.type, runId: r.runId, taskId: r.taskId, from, ...facts }
          : { type: r.type, runId: r.runId, taskId: r.taskId, from, error: r.error, ...facts };
      return { ...base, event, context: { taskId: r.taskId, runId: r.runId, ...(r.type === "TASK_FAILED" ? { error: r.error } : {}) } };
    }
    case "TASK_STARTED": {
      const row = tasks.get(r.taskId);
      const context = { taskId: r.taskId, runId: r.runId };
      // A job run again (stalled, or a duplicate) after its task reported: no second provider call.
      if (row?.reported && row.runId === r.runId && row.status === "running") {
        return { ...base, event: null, context, skip: { outcome: "ignored", code: "duplicate", reason: "already reported (its result is waiting to be applied)" } };
      }
      const dispatch = r.dispatch === undefined ? {} : { dispatch: r.dispatch, dispatched: row?.dispatches ?? 0 };
      // What this start may cost: the document's worst case, plus what earlier runs of the job spent.
      const reserveUsd = row?.costMaxUsd === null || row?.costMaxUsd === undefined ? null : row.costMaxUsd + (r.spentUsd ?? 0);
      const event: MachineEvent = {
        type: r.type,
        runId: r.runId,
        taskId: r.taskId,
        from: priorOf(row, r.runId),
        ...dispatch,
        reserveUsd,
        ...(row?.heldUsd ? { heldUsd: row.heldUsd } : {}),
      };
      return { ...base, event, context: { ...context, ...dispatch } };
    }
    case "FATAL_ERROR":
      return { ...base, event: { type: r.type, runId: r.runId, error: r.error }, context: { runId: r.runId, error: r.error } };
    case "JOBS_WITHDRAWN": {
      const units = r.kind === "staging" ? docs : tasks;
      const current = snapshot.context.runId;
      if (r.dispatches && r.dispatches.length !== r.ids.length) {
        const reason = `names ${r.ids.length} jobs but ${r.dispatches.length} dispatch numbers`;
        return { ...base, event: null, skip: { outcome: "invalid", code: "invalid_input", reason }, context: { runId: r.runId, kind: r.kind, reported: r.ids.length } };
      }
      // A task a provider batch carries goes back only when that provider batch gives it back.
      const carrier = r.providerBatchId ?? null;
      const inFlight = [...new Set(r.ids)].filter((id) => priorOf(units.get(id), r.runId) === "running" && (units.get(id)?.providerBatchId ?? null) === carrier);
      // A job of an earlier dispatch says nothing about the unit's current job, which may be live.
      const ids = r.dispatches ? currentDispatches(r.ids, r.dispatches, units).filter((id) => inFlight.includes(id)) : inFlight;
      const heldUsd = r.kind === "analysis" ? ids.reduce((sum, id) => sum + (units.get(id)?.heldUsd ?? 0), 0) : 0;
      const skip =
        r.runId !== current
          ? { outcome: "ignored" as const, code: "stale_run" as const, reason: staleReason(r.runId, current) }
          : ids.length
            ? undefined
            : inFlight.length
              ? { outcome: "ignored" as const, code: "stale_dispatch" as const, reason: "every named job is of an earlier dispatch" }
              : { outcome: "ignored" as const, code: "nothing_in_flight" as const, reason: "none of the named jobs is in flight" };
      return {
        ...base,
        event: skip ? null : { type: r.type, runId: r.runId, kind: r.kind, count: ids.length, ...(heldUsd ? { heldUsd } : {}) },
        skip,
        withdrawn: ids,
        context: { runId: r.runId, kind: r.kind, withdrawn: ids.length, reported: r.ids.length, ...(carrier && { providerBatchId: carrier }) },
      };
    }
    case "PROVIDER_BATCH_OPENED": {
      const ids = [...new Set(r.taskIds)].filter((id) => priorOf(tasks.get(id), r.runId) === "running" && !tasks.get(id)?.providerBatchId);
      const context = { providerBatchId: r.providerBatchId, provider: r.provider, runId: r.runId, tasks: ids.length, asked: r.taskIds.length };
      if (!ids.length) {
        return { ...base, event: null, context, skip: { outcome: "ignored", code: "nothing_in_flight", reason: "none of the named tasks is dispatched and free of a provider batch" } };
      }
      return { ...base, event: { type: r.type, runId: r.runId }, context, withdrawn: ids };
    }
    case "PROVIDER_BATCH_UPDATED":
      return {
        ...base,
        event: { type: r.type, runId: r.runId },
        context: { providerBatchId: r.providerBatchId, status: r.status, ...(r.providerId && { providerId: r.providerId }), ...(r.requestCounts && { requestCounts: r.requestCounts }) },
      };
  }
}

/** The named units whose current dispatch is the one the withdrawn job was. */
function currentDispatches(ids: string[], dispatches: number[], units: Map<string, UnitRow>): string[] {
  return ids.filter((id, i) => units.get(id)?.dispatches === dispatches[i]);
}

/** The facts an accepted submission itself brings (report outputs, new documents), beside the machine's effects. */
function recordFacts(
  s: Submission,
  p: Prepared,
  writes: WriteList,
  docs: Map<string, UnitRow>,
  tasks: Map<string, UnitRow>,
  result: SubmissionResult,
  options: PlanOptions,
) {
  if (s.kind === "addDocuments") {
    const ids = Array.from({ length: documentCount(s.documents) }, () => options.newId());
    writes.structural({ type: "insertDocuments", ids, documents: s.documents });
    result.documentIds = ids;
    return;
  }
  if (s.kind === "removeDocuments") {
    const ids = p.withdrawn ?? [];
    for (const id of ids) docs.delete(id);
    writes.structural({ type: "deleteDocuments", ids });
    return;
  }
  if (s.kind === "cacheHit") {
    writes.settleCached(s.taskId, { output: s.output, savedUsd: s.savedUsd, strategy: s.strategy });
    tasks.set(s.taskId, { runId: s.runId, status: "succeeded" });
    return;
  }
  if (s.kind !== "report") return;
  const r = s.report;
  switch (r.type) {
    case "DOCUMENT_STAGED":
      writes.settleDocument(r.documentId, {
        status: "succeeded",
        error: null,
        text: r.text,
        chunks: JSON.stringify(r.chunks),
        tokenCount: r.tokenCount,
        textSha256: r.textSha256,
        plan: r.plan ?? null,
      });
      docs.set(r.documentId, { runId: r.runId, status: "succeeded" });
      return;
    case "DOCUMENT_STAGE_FAILED":
      writes.settleDocument(r.documentId, { status: "failed", error: r.error, text: null, chunks: null, tokenCount: null, textSha256: null, plan: null });
      docs.set(r.documentId, { runId: r.runId, status: "failed" });
      return;
    case "TASK_COMPLETED":
      writes.settleTask(r.taskId, { status: "succeeded", error: null, output: JSON.stringify(r.output ?? null), ...usageOf(r), latencyMs: r.latencyMs ?? null });
      tasks.set(r.taskId, { runId: r.runId, status: "succeeded" });
      return;
    case "TASK_FAILED":
      writes.settleTask(r.taskId, { status: "failed", error: r.error, output: null, ...usageOf(r), latencyMs: r.latencyMs ?? null });
      tasks.set(r.taskId, { runId: r.runId, status: "failed" });
      return;
    case "PROVIDER_BATCH_OPENED": {
      const ids = p.withdrawn ?? [];
      for (const id of ids) {
        const row = tasks.get(id);
        if (row) tasks.set(id, { ...row, providerBatchId: r.providerBatchId });
      }
      writes.structural({ type: "openProviderBatch", id: r.providerBatchId, runId: r.runId, provider: r.provider, taskIds: ids });
      return;
    }
    case "PROVIDER_BATCH_UPDATED":
      writes.structural({
        type: "updateProviderBatch",
        update: {
          id: r.providerBatchId,
          status: r.status,
          providerId: r.providerId ?? null,
          providerStatus: r.providerStatus ?? null,
          requestCounts: r.requestCounts ?? null,
          expiresAt: r.expiresAt ?? null,
          errors: r.errors ?? null,
        },
      });
      return;
    case "TASK_STARTED":
    case "FATAL_ERROR":
    case "JOBS_WITHDRAWN":
      return;
  }
}

/** What a task's provider calls cost, as a task report carries it. */
function usageOf(r: Extract<WorkerReport, { type: "TASK_COMPLETED" | "TASK_FAILED" }>) {
  return {
    inputTokens: r.inputTokens ?? null,
    outputTokens: r.outputTokens ?? null,
    requests: r.requests ?? null,
    cachedInputTokens: r.cachedInputTokens ?? null,
    costUsd: r.costUsd ?? null,
    strategy: r.strategy ?? null,
  };
}

/** A task report's usage as the machine sums it; absent fields count nothing. */
function taskUsageOf(r: Extract<WorkerReport, { type: "TASK_COMPLETED" | "TASK_FAILED" }>): TaskUsage {
  return {
    requests: r.requests ?? 0,
    inputTokens: r.inputTokens ?? 0,
    cachedInputTokens: r.cachedInputTokens ?? 0,
    outputTokens: r.outputTokens ?? 0,
    costUsd: r.costUsd === undefined ? 0 : r.costUsd,
  };
}

/** Turns one machine effect into writes. */
function carryOut(effect: Effect, next: BatchSnapshot, p: Prepared, writes: WriteList, docs: Map<string, UnitRow>, tasks: Map<string, UnitRow>) {
  const ctx = next.context;
  switch (effect.type) {
    case "resetOutput":
      tasks.clear();
      for (const [id] of docs) docs.set(id, { runId: null, status: null });
      writes.structural({ type: "resetOutput" });
      return;
    case "beginStaging":
      for (const [id] of docs) docs.set(id, { runId: effect.runId, status: "pending" });
      writes.structural({ type: "beginStaging", runId: effect.runId, expected: ctx.staging.total });
      return;
    case "dispatchStaging":
      writes.dispatch("staging", effect.runId, effect.count);
      return;
    case "dispatchTasks":
      writes.dispatch("analysis", effect.runId, effect.count);
      return;
    case "createTasks":
      writes.structural({ type: "createTasks", runId: effect.runId, scope: effect.scope, expected: ctx.tasks.total });
      return;
    case "cancelPending": {
      const units = effect.kind === "staging" ? docs : tasks;
      for (const [id, row] of units) if (row.runId === effect.runId && row.status === "pending") units.set(id, { ...row, status: "cancelled" });
      writes.structural({ type: "cancelPending", kind: effect.kind, runId: effect.runId });
      return;
    }
    case "withdrawJobs":
      writes.structural({ type: "withdrawJobs", kind: effect.kind, runId: effect.runId });
      return;
    case "releaseWithdrawn": {
      const units = effect.kind === "staging" ? docs : tasks;
      for (const id of p.withdrawn ?? []) {
        const row = units.get(id);
        if (row) units.set(id, { ...row, status: effect.to, providerBatchId: null, heldUsd: 0 });
        writes.release(effect.kind, id, effect.to);
      }
      return;
    }
    case "taskStarted": {
      writes.startTask(effect.taskId, effect.reserveUsd);
      const row = tasks.get(effect.taskId);
      if (row) tasks.set(effect.taskId, { ...row, heldUsd: effect.reserveUsd });
      return;
    }
    case "estimateCost":
      writes.structural({ type: "estimate", runId: effect.runId });
      return;
    case "budgetExhausted":
    case "deleteBatch":
      return;
    // Written from the report itself (recordFacts): the effect only says the machine allowed it.
    case "openProviderBatch":
    case "recordProviderBatch":
      return;
  }
}

/**
 * Writes in plan order, with the frequent kinds merged: one settle per kind of unit, one
 * release per kind, one start and one dispatch per kind, flushed (in that order; cached settles
 * right after the others) before any structural write and at the end.
 */
class WriteList {
  private out: Write[] = [];
  private docs = new Map<string, DocumentOutcome>();
  private tasks = new Map<string, TaskOutcome>();
  private cached = new Map<string, CachedOutcome>();
  private released = { staging: new Map<string, "pending" | "cancelled">(), analysis: new Map<string, "pending" | "cancelled">() };
  private started = new Map<string, number>();
  private starts: string[] = [];
  private dispatches = new Map<string, { kind: WorkKind; runId: number; count: number }>();

  settleDocument(id: string, o: DocumentOutcome) {
    this.docs.set(id, o);
  }
  settleTask(id: string, o: TaskOutcome) {
    this.tasks.set(id, o);
  }
  settleCached(id: string, o: CachedOutcome) {
    this.cached.set(id, o);
  }
  release(kind: WorkKind, id: string, to: "pending" | "cancelled") {
    this.released[kind].set(id, to);
  }
  /** A task started twice in one group counts two starts; it holds the last start's reservation. */
  startTask(id: string, reserveUsd: number) {
    this.starts.push(id);
    this.started.set(id, reserveUsd);
  }
  dispatch(kind: WorkKind, runId: number, count: number) {
    const key = `${kind}:${runId}`;
    const d = this.dispatches.get(key);
    if (d) d.count += count;
    else this.dispatches.set(key, { kind, runId, count });
  }
  structural(w: Write) {
    this.flush();
    this.out.push(w);
  }
  done(): Write[] {
    this.flush();
    return this.out;
  }
  private flush() {
    if (this.docs.size) this.out.push({ type: "settleDocuments", rows: this.docs });
    if (this.tasks.size) this.out.push({ type: "settleTasks", rows: this.tasks });
    if (this.cached.size) this.out.push({ type: "settleCached", rows: this.cached });
    for (const kind of ["staging", "analysis"] as const) {
      if (this.released[kind].size) this.out.push({ type: "releaseWithdrawn", kind, rows: this.released[kind] });
    }
    if (this.starts.length) this.out.push({ type: "startTasks", ids: this.starts, reserveUsd: this.starts.map((id) => this.started.get(id)!) });
    for (const d of this.dispatches.values()) this.out.push({ type: "dispatch", ...d });
    this.docs = new Map();
    this.tasks = new Map();
    this.cached = new Map();
    this.released = { staging: new Map(), analysis: new Map() };
    this.started = new Map();
    this.starts = [];
    this.dispatches = new Map();
  }
}

function historyRow(seq: number, outcome: Outcome, p: Prepared, fromState: StateRef, toState: StateRef, version: number, reason: string | null): HistoryRow {
  return {
    seq,
    outcome,
    eventType: p.eventType,
    source: p.source,
    actor: p.actor ?? null,
    fromState,
    toState,
    version,
    reason,
    context: boundHistoryContext(p.context ?? null),
    event: p.event ?? { type: p.eventType },
  };
}

function staleReason(reported: number, current: number): string {
  return `reported for run ${reported}; the batch is on run ${current}`;
}

/** Why the machine refused: a code, and the same words the API answers with. */
function refusal(snapshot: BatchSnapshot, p: Prepared): { code: ReasonCode; reason: string } {
  const { status } = stateOf(snapshot);
  const event = p.event;
  if (event && "runId" in event && event.runId !== snapshot.context.runId) {
    return { code: "stale_run", reason: staleReason(event.runId, snapshot.context.runId) };
  }
  if (event && "from" in event && event.from !== "pending" && event.from !== "running") {
    return event.from === "missing"
      ? { code: "unknown_unit", reason: "names nothing of this run" }
      : { code: "duplicate", reason: `already ${event.from} (duplicate report)` };
  }
  if (event?.type === "TASK_STARTED" && event.dispatch !== undefined && event.dispatch !== event.dispatched) {
    return { code: "stale_dispatch", reason: `a job of dispatch ${event.dispatch}; the task is on dispatch ${event.dispatched ?? 0}` };
  }
  if (p.source === "user") return { code: "not_allowed", reason: `Cannot ${p.eventType} batch in ${status} state` };
  return { code: "not_allowed", reason: `${p.eventType} does not apply in ${status} state` };
}
