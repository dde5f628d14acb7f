/**
 * The batch service: the entry points (`requestStateChange`, `canTransition`,
 * `handleTaskCompletion`, …) over the store.
 *
 * Submissions to one batch are group-committed: while a transaction for a batch is in
 * flight in this process, further submissions for it queue up and go together in the next
 * transaction, each still judged against the state the one before left. A hot batch is
 * therefore not capped at one event per transaction, and across processes the row lock
 * keeps the same order.
 */
import { NotFoundError, TransitionRefusedError, ValidationError, VersionConflictError, type BatchStanding } from "./errors";
import type { CreateBatchRecord, NewDocument, Store, Submission, SubmissionResult } from "./store";
import type { Action, Source, WorkerReport } from "./machines/batch.events";
import { allowedActions, stateName, type StoredSnapshot } from "./machines/batch.transition";
import { loadSnapshot } from "./stored-snapshot";
import type { PrismaClient } from "./db";
import type { StateRef } from "./vocabulary";
import type { StagedUpload } from "./uploads/upload-spool";

export interface ActionContext {
  reason?: string;
  expectedVersion?: number;
  /** `resume` only: the queue position to resume at (default: the end). */
  position?: number;
  source?: Source;
  /** The API key of the user who asks (`name (id)`), recorded in the history entry. */
  actor?: string | null;
  /** Anything else the caller wants in the history entry. */
  extra?: Record<string, unknown>;
}

/** What an accepted change left: its own resulting state and version, even if later changes in its group moved the batch on. */
export interface ChangeResult {
  previousState: StateRef;
  currentState: StateRef;
  version: number;
  allowedActions: Action[];
}

export interface BatchServiceDeps {
  prisma: PrismaClient;
  store: Store;
  /** Most submissions one transaction takes. */
  maxGroupSize?: number;
}

interface Waiting {
  submission: Submission;
  resolve(result: SubmissionResult): void;
  reject(err: unknown): void;
}

export function createBatchService({ prisma, store, maxGroupSize = 256 }: BatchServiceDeps) {
  const queues = new Map<string, Waiting[]>();

  /** Queues a submission for its batch; starts a group commit if none is in flight here. */
  function submit(batchId: string, submission: Submission): Promise<SubmissionResult> {
    return new Promise((resolve, reject) => {
      const waiting = queues.get(batchId);
      if (waiting) {
        waiting.push({ submission, resolve, reject });
        return;
      }
      queues.set(batchId, [{ submission, resolve, reject }]);
      void drain(batchId);
    });
  }

  async function drain(batchId: string) {
    for (;;) {
      const waiting = queues.get(batchId) ?? [];
      if (!waiting.length) {
        queues.delete(batchId);
        return;
      }
      const group = waiting.splice(0, maxGroupSize);
      try {
        const results = await store.apply(batchId, group.map((w) => w.submission));
        group.forEach((w, i) => w.resolve(results[i] as SubmissionResult));
      } catch (err) {
        for (const w of group) w.reject(err);
      }
    }
  }

  /** Turns a user-facing result into the API's action answer, throwing the refusals. */
  function answer(batchId: string, action: string, result: SubmissionResult, expected?: number): ChangeResult {
    const standing: BatchStanding = {
      current_state: result.from.split(".")[0] ?? result.from,
      allowed_actions: result.allowedActions,
      version: result.version,
    };
    switch (result.outcome) {
      case "accepted":
        return { previousState: result.from as StateRef, currentState: result.to as StateRef, version: result.version, allowedActions: result.allowedActions };
      case "not_found":
        throw new NotFoundError("Batch", batchId);
      case "invalid":
        throw new ValidationError(result.reason ?? "the request could not be stored", { code: result.code });
      case "version_conflict":
        throw new VersionConflictError(expected ?? -1, standing);
      case "refused":
      case "ignored":
        throw new TransitionRefusedError(result.reason ?? `Cannot ${action} batch in ${standing.current_state} state`, standing);
    }
  }

  async function requestStateChange(batchId: string, action: Action, ctx: ActionContext = {}): Promise<ChangeResult> {
    const result = await submit(batchId, {
      kind: "action",
      action,
      source: ctx.source ?? "user",
      reason: ctx.reason,
      expectedVersion: ctx.expectedVersion,
      position: ctx.position,
      context: ctx.extra,
      actor: ctx.actor,
    });
    return answer(batchId, action, result, ctx.expectedVersion);
  }

  /** Whether the machine would accept `action` now (no lock: the answer may be stale by the time you act). */
  async function canTransition(batchId: string, action: Action) {
    const row = await prisma.batch.findUnique({ where: { id: batchId }, select: { snapshot: true, machineVersion: true, version: true } });
    if (!row) throw new NotFoundError("Batch", batchId);
    const { snapshot } = loadSnapshot(batchId, row.snapshot as StoredSnapshot, row.machineVersion);
    const allowed = allowedActions(snapshot);
    return { allowed: allowed.includes(action), currentState: stateName(snapshot), allowedActions: allowed, version: row.version };
  }

  /** A worker's report, applied now; duplicates and stale reports come back as `ignored`, never as errors. */
  function report(report: WorkerReport): Promise<SubmissionResult> {
    return submit(report.batchId, { kind: "report", report });
  }

  /**
   * A worker's report whose answer the worker does not need: validated, stored in the inbox and
   * applied soon after by the batch's drainer. Resolves once the report is durable.
   */
  function deliver(report: WorkerReport): Promise<void> {
    return store.inbox.deliver(report);
  }

  /** Sets (or, with null, removes) the batch's budget; accepted in every state, recorded in history. */
  async function setBudget(batchId: string, budgetUsd: number | null, ctx: ActionContext = {}): Promise<ChangeResult> {
    const result = await submit(batchId, { kind: "setBudget", budgetUsd, source: ctx.source ?? "user", expectedVersion: ctx.expectedVersion, actor: ctx.actor });
    return answer(batchId, "set the budget of", result, ctx.expectedVersion);
  }

  async function addDocuments(batchId: string, documents: NewDocument[] | StagedUpload, ctx: ActionContext = {}) {
    const result = await submit(batchId, { kind: "addDocuments", documents, source: ctx.source ?? "user", expectedVersion: ctx.expectedVersion, actor: ctx.actor });
    const change = answer(batchId, "add documents to", result, ctx.expectedVersion);
    return { ...change, documentIds: result.documentIds ?? [] };
  }

  async function removeDocuments(batchId: string, documentIds: string[], ctx: ActionContext = {}) {
    const result = await submit(batchId, { kind: "removeDocuments", documentIds, source: ctx.source ?? "user", expectedVersion: ctx.expectedVersion, actor: ctx.actor });
    if (result.code === "no_such_document") {
      throw new NotFoundError("Document", documentIds.join(", "));
    }
    return answer(batchId, "remove documents from", result, ctx.expectedVersion);
  }

  /** Moves a queued batch to `position` (1 = next). Positions are queue order, not machine state: no version change. */
  async function reorderQueue(batchId: string, position: number): Promise<void> {
    const moved = await store.moveQueued(batchId, position);
    if (!moved) {
      const exists = await prisma.batch.count({ where: { id: batchId } });
      if (!exists) throw new NotFoundError("Batch", batchId);
      const { currentState, allowedActions: allowed, version } = await canTransition(batchId, "pause");
      throw new TransitionRefusedError("Only a queued batch can be moved in the queue", {
        current_state: currentState.split(".")[0] ?? currentState,
        allowed_actions: allowed,
        version,
      });
    }
  }

  return {
    createBatch: (record: CreateBatchRecord) => store.createBatch(record),
    requestStateChange,
    canTransition,
    report,
    deliver,
    handleTaskCompletion: (r: Extract<WorkerReport, { type: "TASK_COMPLETED" }>) => report(r),
    handleTaskFailure: (r: Extract<WorkerReport, { type: "TASK_FAILED" }>) => report(r),
    handleDocumentStaged: (r: Extract<WorkerReport, { type: "DOCUMENT_STAGED" }>) => report(r),
    handleDocumentStageFailure: (r: Extract<WorkerReport, { type: "DOCUMENT_STAGE_FAILED" }>) => report(r),
    addDocuments,
    removeDocuments,
    setBudget,
    reorderQueue,
    /** Starts queued batches if slots are free; the periodic safety net behind in-transaction promotion. */
    promoteQueued: () => store.rebalance(),
    /** Drains every batch's pending inbox reports; the safety net behind the drains after each append. */
    sweepInbox: () => store.inbox.sweep(),
  };
}

export type BatchService = ReturnType<typeof createBatchService>;
