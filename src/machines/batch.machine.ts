/**
 * The batch machine: the only place that decides which transitions are legal.
 *
 * It is pure. Work leaves it as named effects (emitted events, returned as data by xstate's
 * `transition()` and carried out by the batch service); facts enter it as events.
 * It has no `invoke` and no `after`, so a snapshot restored from JSON behaves exactly like
 * the one that was stored.
 *
 * Each kind of work (staging documents, analysing tasks) keeps counters and a bounded
 * window: at most `windows[kind]` units are dispatched to workers at once, and every settled
 * unit makes room for the next. The store turns a `dispatch` effect's count into concrete
 * rows and jobs.
 */
import { and, assign, emit, enqueueActions, setup } from "xstate";
import type { EventOf, MachineEvent, PriorStatus, TaskUsage, WorkKind } from "./batch.events";
import type { PauseReason } from "../vocabulary";

/**
 * Bumped whenever a change to this machine could read an old snapshot differently; each bump
 * comes with a migration in `batch.versions.ts`. v2: one dispatch window per kind of work.
 * v3: the batch's usage, its budget and what running tasks hold of it, and why it is paused.
 */
export const MACHINE_VERSION = 3;

export interface Counts {
  total: number;
  pending: number;
  running: number;
  succeeded: number;
  failed: number;
  cancelled: number;
}

export interface BatchContext {
  /** Current run; bumped by stage, restage, rerun and retry-failed. */
  runId: number;
  /** Documents in the batch (changed only while SAVED). */
  documents: number;
  /**
   * Most units of each kind dispatched to workers at once. Apart because staging is bound by
   * the workers' CPU and analysis by the provider's limits, so one size rarely fits both.
   */
  windows: Record<WorkKind, number>;
  /** Share of documents that may fail staging before the run is FAILED_STAGING. */
  stagingTolerance: number;
  /** Share of tasks that may fail before the run is FAILED. */
  failureTolerance: number;
  /** Set by rerun: analysis starts by itself once staging succeeds. */
  autoRun: boolean;
  staging: Counts;
  tasks: Counts;
  lastError: string | null;
  /** What the current results cost: every settled task of the runs since the last reset, restage or rerun. */
  usage: Usage;
  budget: Budget;
  /** Why the batch is PAUSED; null in every other state. */
  pauseReason: PauseReason | null;
}

export interface Usage {
  requests: number;
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  /** USD of the tasks whose model has a price. */
  costUsd: number;
  /** Settled tasks whose cost is unknown (no price for the model): `costUsd` leaves them out. */
  unpriced: number;
}

export interface Budget {
  /** Most the batch's usage may cost, in USD; null: no budget. */
  limitUsd: number | null;
  /** What the tasks that started and have not yet settled may still cost, at most. */
  reservedUsd: number;
}

export interface BatchInput {
  documents: number;
  window: number;
  /** The analysis window when it differs from staging's (the batch lane sends a whole run at once). */
  analysisWindow?: number;
  stagingTolerance: number;
  failureTolerance: number;
  budgetUsd?: number | null;
}

/**
 * The named effects the machine emits (xstate `emit`): work for the batch service to carry
 * out in the same transaction (rows to write) or after commit (jobs to enqueue or withdraw).
 */
export type Effect =
  | { type: "resetOutput" }
  | { type: "beginStaging"; runId: number }
  | { type: "dispatchStaging"; runId: number; count: number }
  | { type: "createTasks"; runId: number; scope: "staged" | "unsucceeded" }
  | { type: "dispatchTasks"; runId: number; count: number }
  | { type: "cancelPending"; runId: number; kind: WorkKind }
  | { type: "withdrawJobs"; runId: number; kind: WorkKind }
  | { type: "releaseWithdrawn"; runId: number; kind: WorkKind; to: "pending" | "cancelled" }
  | { type: "taskStarted"; runId: number; taskId: string; reserveUsd: number }
  /** A provider batch of started tasks may be submitted (the store records it with the report). */
  | { type: "openProviderBatch"; runId: number }
  /** What a provider says of a provider batch, to record. */
  | { type: "recordProviderBatch" }
  | { type: "estimateCost"; runId: number }
  | { type: "budgetExhausted"; runId: number; taskId: string; spentUsd: number; reservedUsd: number; budgetUsd: number; neededUsd: number | null }
  | { type: "deleteBatch" };
export type EffectType = Effect["type"];

const zero = (): Counts => ({ total: 0, pending: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 });
export const NO_USAGE: Usage = { requests: 0, inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, costUsd: 0, unpriced: 0 };
/** Float sums of costs carry noise; a millionth of a cent is below anything a price table holds. */
const roundUsd = (usd: number) => Math.round(usd * 1e8) / 1e8;

function addTaskUsage(u: Usage, t: TaskUsage | undefined): Usage {
  if (!t) return u;
  return {
    requests: u.requests + t.requests,
    inputTokens: u.inputTokens + t.inputTokens,
    cachedInputTokens: u.cachedInputTokens + t.cachedInputTokens,
    outputTokens: u.outputTokens + t.outputTokens,
    costUsd: roundUsd(u.costUsd + (t.costUsd ?? 0)),
    unpriced: u.unpriced + (t.costUsd === null ? 1 : 0),
  };
}

const release = (b: Budget, heldUsd: number | undefined): Budget => ({ ...b, reservedUsd: Math.max(0, roundUsd(b.reservedUsd - (heldUsd ?? 0))) });

/** What a start asks of the budget beyond what the task already holds; null when its cost cannot be bounded. */
function startNeeds(e: EventOf<"TASK_STARTED">): number | null {
  if (e.reserveUsd === null) return null;
  return Math.max(0, (e.reserveUsd ?? 0) - (e.heldUsd ?? 0));
}

/** A dispatched task of the current run, asked for by its current dispatch's job. */
function startable(context: BatchContext, e: MachineEvent): boolean {
  return (
    e.type === "TASK_STARTED" &&
    e.runId === context.runId &&
    e.from === "running" &&
    (e.dispatch === undefined || e.dispatch === e.dispatched)
  );
}

function affords(context: BatchContext, e: EventOf<"TASK_STARTED">): boolean {
  const { limitUsd, reservedUsd } = context.budget;
  if (limitUsd === null) return true;
  const needs = startNeeds(e);
  return needs !== null && context.usage.costUsd + reservedUsd + needs <= limitUsd + 1e-9;
}

const usd = (n: number) => `$${n.toFixed(n >= 1 ? 2 : 4)}`;

function budgetMessage(context: BatchContext, needed: number | null): string {
  const { limitUsd, reservedUsd } = context.budget;
  const spent = `budget reached: spent ${usd(context.usage.costUsd)} of ${usd(limitUsd ?? 0)}`;
  const inFlight = reservedUsd > 0 ? `, ${usd(reservedUsd)} held by tasks in flight` : "";
  const next =
    needed === null
      ? "; the next task's cost cannot be bounded (the model has no price or its answers no token ceiling: set analysis.price or analysis.max_tokens)"
      : `; the next task may cost up to ${usd(needed)}`;
  return `${spent}${inFlight}${next}. Raise the budget and resume to continue.`;
}
const fresh = (total: number): Counts => ({ ...zero(), total, pending: total });
const counterOf = (kind: WorkKind): "staging" | "tasks" => (kind === "staging" ? "staging" : "tasks");

/** How many more units fit in the window. */
const room = (c: Counts, window: number) => Math.max(0, Math.min(c.pending, window - c.running));
const unfinished = (c: Counts) => c.pending + c.running;
const tooManyFailures = (c: Counts, tolerance: number) => c.failed > tolerance * c.total;
const isOpen = (from: PriorStatus) => from === "pending" || from === "running";

type UnitReport = EventOf<"DOCUMENT_STAGED" | "DOCUMENT_STAGE_FAILED" | "TASK_COMPLETED" | "TASK_FAILED">;
const reportKind = (e: UnitReport): WorkKind =>
  e.type === "DOCUMENT_STAGED" || e.type === "DOCUMENT_STAGE_FAILED" ? "staging" : "analysis";
const reportOutcome = (e: UnitReport): "succeeded" | "failed" =>
  e.type === "DOCUMENT_STAGED" || e.type === "TASK_COMPLETED" ? "succeeded" : "failed";

/** Moves one reported unit from where the store found it to its outcome. */
function settle(c: Counts, from: "pending" | "running", to: "succeeded" | "failed"): Counts {
  return { ...c, [from]: c[from] - 1, [to]: c[to] + 1 };
}

/** What a composite action does: a patch to the context and the effects it emits, in order. */
interface Plan {
  context: Partial<BatchContext>;
  effects: Effect[];
}

export const batchMachine = setup({
  types: {
    context: {} as BatchContext,
    events: {} as MachineEvent,
    input: {} as BatchInput,
    emitted: {} as Effect,
  },
  actions: {
    deleteBatch: emit({ type: "deleteBatch" }),
    openProviderBatch: emit(({ context }) => ({ type: "openProviderBatch" as const, runId: context.runId })),
    recordProviderBatch: emit({ type: "recordProviderBatch" }),
    startTask: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "TASK_STARTED") return;
      const reserveUsd = event.reserveUsd ?? 0;
      const needs = startNeeds(event) ?? 0;
      enqueue.assign({ budget: { ...context.budget, reservedUsd: roundUsd(context.budget.reservedUsd + needs) } });
      enqueue.emit({ type: "taskStarted", runId: context.runId, taskId: event.taskId, reserveUsd });
    }),
    pauseForBudget: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "TASK_STARTED") return;
      const needed = startNeeds(event);
      enqueue.assign({ pauseReason: "budget", lastError: budgetMessage(context, needed) });
      enqueue.emit({ type: "withdrawJobs", runId: context.runId, kind: "analysis" });
      enqueue.emit({
        type: "budgetExhausted",
        runId: context.runId,
        taskId: event.taskId,
        spentUsd: context.usage.costUsd,
        reservedUsd: context.budget.reservedUsd,
        budgetUsd: context.budget.limitUsd ?? 0,
        neededUsd: needed,
      });
    }),
    setBudget: assign({
      budget: ({ context, event }) => ({ ...context.budget, limitUsd: event.type === "SET_BUDGET" ? event.budgetUsd : context.budget.limitUsd }),
    }),
    estimate: emit(({ context }) => ({ type: "estimateCost" as const, runId: context.runId })),
    pauseByUser: assign({ pauseReason: "user" as const }),
    clearPause: assign(({ context }) => ({
      pauseReason: null,
      // The budget's message said why it stopped; resumed, it no longer stands.
      lastError: context.pauseReason === "budget" ? null : context.lastError,
    })),
    addDocuments: assign({
      documents: ({ context, event }) => context.documents + (event.type === "DOCUMENTS_ADDED" ? event.count : 0),
    }),
    removeDocuments: assign({
      documents: ({ context, event }) => context.documents - (event.type === "DOCUMENTS_REMOVED" ? event.count : 0),
    }),
    startStaging: enqueueActions(({ context, enqueue }) => {
      const plan = beginRun(context, false);
      enqueue.assign(plan.context);
      for (const effect of plan.effects) enqueue.emit(effect);
    }),
    startRerun: enqueueActions(({ context, enqueue }) => {
      const plan = beginRun(context, true);
      enqueue.assign(plan.context);
      for (const effect of plan.effects) enqueue.emit(effect);
    }),
    refillStaging: enqueueActions(({ context, enqueue }) => {
      const plan = refill(context, "staging");
      enqueue.assign(plan.context);
      for (const effect of plan.effects) enqueue.emit(effect);
    }),
    refillTasks: enqueueActions(({ context, enqueue }) => {
      const plan = refill(context, "analysis");
      enqueue.assign(plan.context);
      for (const effect of plan.effects) enqueue.emit(effect);
    }),
    settleReport: assign(({ context, event }) => {
      const report = event as UnitReport;
      const key = counterOf(reportKind(report));
      const counts = { [key]: settle(context[key], report.from as "pending" | "running", reportOutcome(report)) };
      if (report.type !== "TASK_COMPLETED" && report.type !== "TASK_FAILED") return counts;
      return { ...counts, usage: addTaskUsage(context.usage, report.usage), budget: release(context.budget, report.heldUsd) };
    }),
    withdrawnToPending: enqueueActions(({ context, event, enqueue }) => {
      const plan = releaseWithdrawn(context, event, "pending");
      enqueue.assign(plan.context);
      for (const effect of plan.effects) enqueue.emit(effect);
    }),
    withdrawnToCancelled: enqueueActions(({ context, event, enqueue }) => {
      const plan = releaseWithdrawn(context, event, "cancelled");
      enqueue.assign(plan.context);
      for (const effect of plan.effects) enqueue.emit(effect);
    }),
    startTasksFromStaged: enqueueActions(({ context, enqueue }) => {
      enqueue.assign({ tasks: fresh(context.staging.succeeded), autoRun: false });
      enqueue.emit({ type: "createTasks", runId: context.runId, scope: "staged" });
    }),
    startRetry: enqueueActions(({ context, enqueue }) => {
      const runId = context.runId + 1;
      // Late reports of the run before are stale from here on: what its tasks held is let go.
      enqueue.assign({ runId, tasks: fresh(context.tasks.total - context.tasks.succeeded), lastError: null, budget: { ...context.budget, reservedUsd: 0 } });
      enqueue.emit({ type: "createTasks", runId, scope: "unsucceeded" });
    }),
    withdrawTasks: enqueueActions(({ context, enqueue }) => {
      enqueue.emit({ type: "withdrawJobs", runId: context.runId, kind: "analysis" });
    }),
    cancelStaging: enqueueActions(({ context, enqueue }) => {
      const plan = stop(context, "staging", null);
      enqueue.assign(plan.context);
      for (const effect of plan.effects) enqueue.emit(effect);
    }),
    cancelTasks: enqueueActions(({ context, enqueue }) => {
      const plan = stop(context, "analysis", null);
      enqueue.assign(plan.context);
      for (const effect of plan.effects) enqueue.emit(effect);
    }),
    failStaging: enqueueActions(({ context, enqueue }) => {
      const why = context.lastError ?? failureMessage(context.staging, context.stagingTolerance, "documents could not be staged");
      const plan = stop(context, "staging", why);
      enqueue.assign(plan.context);
      for (const effect of plan.effects) enqueue.emit(effect);
    }),
    failTasks: enqueueActions(({ context, enqueue }) => {
      const why = context.lastError ?? failureMessage(context.tasks, context.failureTolerance, "tasks failed");
      const plan = stop(context, "analysis", why);
      enqueue.assign(plan.context);
      for (const effect of plan.effects) enqueue.emit(effect);
    }),
    recordError: assign({ lastError: ({ event }) => ("error" in event ? event.error : null) }),
    clearRuns: enqueueActions(({ context, enqueue }) => {
      enqueue.assign({ staging: zero(), tasks: zero(), autoRun: false, lastError: null, usage: NO_USAGE, budget: { ...context.budget, reservedUsd: 0 } });
      enqueue.emit({ type: "resetOutput" });
    }),
  },
  guards: {
    hasDocuments: ({ context }) => context.documents > 0,
    hasUnfinishedTasks: ({ context }) => unfinished(context.tasks) > 0,
    hasUnsucceededTasks: ({ context }) => context.tasks.total - context.tasks.succeeded > 0,
    isCurrentRun: ({ context, event }) => "runId" in event && event.runId === context.runId,
    /** Tasks started within the budget before it ran out still go out as a provider batch; a pause by a user sends nothing. */
    canOpenAfterBudgetPause: ({ context, event }) => "runId" in event && event.runId === context.runId && context.pauseReason === "budget",
    /** A report of the current run for a unit that is still open: the first report counts, later ones do not. */
    isOpenReport: ({ context, event }) => {
      if (!("from" in event) || event.type === "TASK_STARTED" || event.runId !== context.runId || !isOpen(event.from)) return false;
      const counts = context[counterOf(reportKind(event))];
      return counts[event.from as "pending" | "running"] > 0;
    },
    /**
     * A dispatched task of the current run may start, from its current dispatch's job only: the
     * first start and restarts of that job after a crash alike, never a job of an earlier dispatch.
     */
    canStartTask: ({ context, event }) =>
      startable(context, event),
    /**
     * The budget affords this start: what is spent, what tasks in flight hold and the most this one
     * may cost stay within it. Decided here, under the batch's row lock, so it holds across any
     * number of worker processes.
     */
    canAffordTask: ({ context, event }) => event.type === "TASK_STARTED" && affords(context, event),
    /** A task that may start, but the budget cannot afford it. */
    overBudget: ({ context, event }) => event.type === "TASK_STARTED" && startable(context, event) && !affords(context, event),
    canWithdraw: ({ context, event }) =>
      event.type === "JOBS_WITHDRAWN" &&
      event.runId === context.runId &&
      event.count > 0 &&
      event.count <= context[counterOf(event.kind)].running,
    canRemoveDocuments: ({ context, event }) =>
      event.type === "DOCUMENTS_REMOVED" && event.count <= context.documents,
    stagingFailedTooOften: ({ context }) => tooManyFailures(context.staging, context.stagingTolerance),
    stagingDoneAndAutoRun: ({ context }) => unfinished(context.staging) === 0 && context.autoRun,
    stagingDone: ({ context }) => unfinished(context.staging) === 0,
    tasksFailedTooOften: ({ context }) => tooManyFailures(context.tasks, context.failureTolerance),
    tasksDone: ({ context }) => unfinished(context.tasks) === 0,
  },
}).createMachine({
  id: "batch",
  // Called with no input when xstate builds an actor only to restore or transition a stored
  // snapshot (whose context replaces this one), so a missing input must not throw.
  context: ({ input }: { input: BatchInput | undefined }) => ({
    runId: 0,
    documents: input?.documents ?? 0,
    windows: { staging: input?.window ?? 1, analysis: input?.analysisWindow ?? input?.window ?? 1 },
    stagingTolerance: input?.stagingTolerance ?? 0,
    failureTolerance: input?.failureTolerance ?? 0,
    autoRun: false,
    staging: zero(),
    tasks: zero(),
    lastError: null,
    usage: NO_USAGE,
    budget: { limitUsd: input?.budgetUsd ?? null, reservedUsd: 0 },
    pauseReason: null,
  }),
  initial: "SAVED",
  // Reports that arrive in any state: late results of the current run are still recorded
  // (SPEC: finished work is kept); anything else is refused and recorded as ignored.
  on: {
    DOCUMENT_STAGED: { guard: "isOpenReport", actions: "settleReport" },
    DOCUMENT_STAGE_FAILED: { guard: "isOpenReport", actions: "settleReport" },
    TASK_COMPLETED: { guard: "isOpenReport", actions: "settleReport" },
    TASK_FAILED: { guard: "isOpenReport", actions: "settleReport" },
    JOBS_WITHDRAWN: { guard: "canWithdraw", actions: "withdrawnToCancelled" },
    // Provider batches go on after a pause or cancel (their finished lines still count): what the provider says is always recorded.
    PROVIDER_BATCH_UPDATED: { actions: "recordProviderBatch" },
    SET_BUDGET: { actions: "setBudget" },
  },
  states: {
    SAVED: {
      on: {
        stage: { guard: "hasDocuments", target: "STAGING", actions: "startStaging" },
        restage: { guard: "hasDocuments", target: "STAGING", actions: "startStaging" },
        reset: { target: "SAVED", reenter: true, actions: "clearRuns" },
        delete: { target: "DELETED", actions: "deleteBatch" },
        DOCUMENTS_ADDED: { actions: "addDocuments" },
        DOCUMENTS_REMOVED: { guard: "canRemoveDocuments", actions: "removeDocuments" },
      },
    },
    STAGING: {
      always: [
        { guard: "stagingFailedTooOften", target: "FAILED_STAGING", actions: "failStaging" },
        { guard: "stagingDoneAndAutoRun", target: "ANALYZING", actions: ["estimate", "startTasksFromStaged"] },
        { guard: "stagingDone", target: "STAGED", actions: "estimate" },
      ],
      on: {
        cancel: { target: "CANCELLED", actions: "cancelStaging" },
        DOCUMENT_STAGED: { guard: "isOpenReport", actions: ["settleReport", "refillStaging"] },
        DOCUMENT_STAGE_FAILED: { guard: "isOpenReport", actions: ["settleReport", "refillStaging"] },
        JOBS_WITHDRAWN: { guard: "canWithdraw", actions: ["withdrawnToPending", "refillStaging"] },
        FATAL_ERROR: { guard: "isCurrentRun", target: "FAILED_STAGING", actions: ["recordError", "failStaging"] },
      },
    },
    STAGED: {
      on: {
        run: { target: "ANALYZING", actions: "startTasksFromStaged" },
        reset: { target: "SAVED", actions: "clearRuns" },
        delete: { target: "DELETED", actions: "deleteBatch" },
      },
    },
    ANALYZING: {
      initial: "queued",
      on: {
        pause: { guard: "hasUnfinishedTasks", target: "PAUSED", actions: ["pauseByUser", "withdrawTasks"] },
        cancel: { target: "CANCELLED", actions: "cancelTasks" },
        JOBS_WITHDRAWN: { guard: "canWithdraw", actions: "withdrawnToPending" },
        FATAL_ERROR: { guard: "isCurrentRun", target: "FAILED", actions: ["recordError", "failTasks"] },
      },
      states: {
        /** Waiting in the batch queue; the batch service sends START when a slot is free. */
        queued: {
          on: { START: { target: "running" } },
        },
        running: {
          entry: "refillTasks",
          always: [
            { guard: "tasksFailedTooOften", target: "#batch.FAILED", actions: "failTasks" },
            { guard: "tasksDone", target: "#batch.COMPLETED" },
          ],
          on: {
            TASK_STARTED: [
              { guard: and(["canStartTask", "canAffordTask"]), actions: "startTask" },
              // The budget cannot afford it: the batch pauses itself before any request is sent.
              { guard: "overBudget", target: "#batch.PAUSED", actions: "pauseForBudget" },
            ],
            PROVIDER_BATCH_OPENED: { guard: "isCurrentRun", actions: "openProviderBatch" },
            TASK_COMPLETED: { guard: "isOpenReport", actions: ["settleReport", "refillTasks"] },
            TASK_FAILED: { guard: "isOpenReport", actions: ["settleReport", "refillTasks"] },
            JOBS_WITHDRAWN: { guard: "canWithdraw", actions: ["withdrawnToPending", "refillTasks"] },
          },
        },
      },
    },
    PAUSED: {
      // Tasks in flight when the pause was accepted may still finish; once nothing is left
      // the run is over and the batch completes (or fails) without waiting for a resume.
      always: [
        { guard: "tasksFailedTooOften", target: "FAILED", actions: ["clearPause", "failTasks"] },
        { guard: "tasksDone", target: "COMPLETED", actions: "clearPause" },
      ],
      on: {
        resume: { target: "ANALYZING", actions: "clearPause" },
        cancel: { target: "CANCELLED", actions: ["clearPause", "cancelTasks"] },
        JOBS_WITHDRAWN: { guard: "canWithdraw", actions: "withdrawnToPending" },
        PROVIDER_BATCH_OPENED: { guard: "canOpenAfterBudgetPause", actions: "openProviderBatch" },
        FATAL_ERROR: { guard: "isCurrentRun", target: "FAILED", actions: ["clearPause", "recordError", "failTasks"] },
      },
    },
    COMPLETED: {
      on: {
        reset: { target: "SAVED", actions: "clearRuns" },
        restage: { target: "STAGING", actions: "startStaging" },
        rerun: { target: "STAGING", actions: "startRerun" },
        "retry-failed": { guard: "hasUnsucceededTasks", target: "ANALYZING", actions: "startRetry" },
        delete: { target: "DELETED", actions: "deleteBatch" },
      },
    },
    FAILED: {
      on: {
        reset: { target: "SAVED", actions: "clearRuns" },
        restage: { target: "STAGING", actions: "startStaging" },
        rerun: { target: "STAGING", actions: "startRerun" },
        "retry-failed": { guard: "hasUnsucceededTasks", target: "ANALYZING", actions: "startRetry" },
        delete: { target: "DELETED", actions: "deleteBatch" },
      },
    },
    FAILED_STAGING: {
      on: {
        reset: { target: "SAVED", actions: "clearRuns" },
        restage: { target: "STAGING", actions: "startStaging" },
        rerun: { target: "STAGING", actions: "startRerun" },
        delete: { target: "DELETED", actions: "deleteBatch" },
      },
    },
    CANCELLED: {
      on: {
        reset: { target: "SAVED", actions: "clearRuns" },
        restage: { target: "STAGING", actions: "startStaging" },
        rerun: { target: "STAGING", actions: "startRerun" },
        delete: { target: "DELETED", actions: "deleteBatch" },
      },
    },
    /** Never stored: the batch service deletes the batch instead of writing this state. */
    DELETED: { type: "final" },
  },
});

function beginRun(context: BatchContext, autoRun: boolean): Plan {
  const runId = context.runId + 1;
  const staging = fresh(context.documents);
  const count = room(staging, context.windows.staging);
  const effects: Effect[] = [
    { type: "resetOutput" },
    { type: "beginStaging", runId },
  ];
  if (count > 0) effects.push({ type: "dispatchStaging", runId, count });
  return {
    context: {
      runId,
      autoRun,
      staging: { ...staging, pending: staging.pending - count, running: count },
      tasks: zero(),
      lastError: null,
      usage: NO_USAGE,
      budget: { ...context.budget, reservedUsd: 0 },
    },
    effects,
  };
}

function refill(context: BatchContext, kind: WorkKind): Plan {
  const key = counterOf(kind);
  const counts = context[key];
  const count = room(counts, context.windows[kind]);
  if (count === 0) return { context: {}, effects: [] };
  return {
    context: { [key]: { ...counts, pending: counts.pending - count, running: counts.running + count } },
    effects: [{ type: kind === "staging" ? "dispatchStaging" : "dispatchTasks", runId: context.runId, count }],
  };
}

/** Ends a run early: pending units are cancelled, queued jobs withdrawn, units in flight may still report. */
function stop(context: BatchContext, kind: WorkKind, lastError: string | null): Plan {
  const key = counterOf(kind);
  const counts = context[key];
  return {
    context: { [key]: { ...counts, pending: 0, cancelled: counts.cancelled + counts.pending }, lastError },
    effects: [
      { type: "cancelPending", runId: context.runId, kind },
      { type: "withdrawJobs", runId: context.runId, kind },
    ],
  };
}

/** Jobs taken back from Redis before they started: back to pending (to run later) or cancelled. */
function releaseWithdrawn(context: BatchContext, event: MachineEvent, to: "pending" | "cancelled"): Plan {
  if (event.type !== "JOBS_WITHDRAWN") return { context: {}, effects: [] };
  const key = counterOf(event.kind);
  const counts = context[key];
  return {
    context: {
      [key]: { ...counts, running: counts.running - event.count, [to]: counts[to] + event.count },
      ...(event.heldUsd ? { budget: release(context.budget, event.heldUsd) } : {}),
    },
    effects: [{ type: "releaseWithdrawn", runId: event.runId, kind: event.kind, to }],
  };
}

function failureMessage(counts: Counts, tolerance: number, what: string): string {
  return `${counts.failed} of ${counts.total} ${what}; the tolerance is ${Math.round(tolerance * 1000) / 10}%`;
}
