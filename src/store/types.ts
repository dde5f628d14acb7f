/** The store's vocabulary towards its callers: what one may submit, and what comes back. */
import type { Action, MachineEvent, WorkerReport, WorkKind } from "../machines/batch.events";
import type { AnalysisMode, Outcome, ReasonCode, Source, StateRef } from "../vocabulary";
import type { StagedUpload } from "../uploads/upload-spool";

/** A document as stored when it is added. */
export interface NewDocument {
  name: string;
  mimeType: string;
  content: Buffer;
}

/** One thing asked of a batch. */
export type Submission =
  | { kind: "action"; action: Action; source: Source; reason?: string; expectedVersion?: number; position?: number; context?: Record<string, unknown>; actor?: string | null }
  | { kind: "report"; report: WorkerReport }
  | { kind: "system"; event: MachineEvent; reason?: string }
  | { kind: "setBudget"; budgetUsd: number | null; source: Source; expectedVersion?: number; actor?: string | null }
  | { kind: "addDocuments"; documents: NewDocument[] | StagedUpload; source: Source; expectedVersion?: number; actor?: string | null }
  | { kind: "removeDocuments"; documentIds: string[]; source: Source; expectedVersion?: number; actor?: string | null }
  /** A task of the current run whose answer the store found in the result cache: it completes without a provider call. */
  | { kind: "cacheHit"; runId: number; taskId: string; output: string; savedUsd: number | null; strategy: string | null };

export interface SubmissionResult {
  outcome: Outcome;
  /** State before and after this submission, e.g. `ANALYZING.running`. */
  from: StateRef | "";
  to: StateRef | "";
  /** The batch version this submission left (its own, even when later ones in its group changed it again). */
  version: number;
  allowedActions: Action[];
  /** Why it was not accepted: a code to branch on, and a sentence for people. */
  code?: ReasonCode;
  reason?: string;
  /** Ids of documents added by an `addDocuments` submission. */
  documentIds?: string[];
}

/** Queue work for the relay, one list per committed group. */
export type OutboxItem =
  | { type: "enqueueStaging"; runId: number; units: { id: string; dispatch: number }[] }
  /** `lane: "batch"`: the tasks go to the provider batch lane instead of one job each. */
  | { type: "enqueueAnalysis"; runId: number; units: { id: string; dispatch: number }[]; lane?: AnalysisMode }
  | { type: "withdrawJobs"; runId: number; kind: WorkKind };

/** The payload of one outbox row: every piece of queue work one group asked for. */
export interface OutboxPayload {
  batchId: string;
  items: OutboxItem[];
}

/** What one committed group changed; handed to commit listeners (effects relay, metrics). */
export interface Commit {
  batchId: string;
  version: number;
  status: string;
  substate: string | null;
  deleted: boolean;
  transitions: { from: string; event: string; to: string; version: number; effects: string[] }[];
  outboxIds: string[];
  /** Submissions in the group, and how long its transaction took. */
  groupSize: number;
  durationMs: number;
}

export interface CreateBatchRecord {
  name: string;
  analysis: Record<string, unknown>;
  priority: number;
  window: number;
  /** The analysis window when it differs (the batch lane's). */
  analysisWindow?: number;
  stagingTolerance: number;
  failureTolerance: number;
  /** The batch's budget in USD (`analysis.budget_usd`); absent: none. */
  budgetUsd?: number | null;
  /** In memory, or spooled (an archive or a large upload, moved in by one statement). */
  documents: NewDocument[] | StagedUpload;
  /** The tenant the batch belongs to (default `default`), and the API key that created it. */
  tenant?: string;
  actor?: string | null;
}

/** A broken promise between the machine's counters and the stored rows: roll back, never write. */
export class InvariantError extends Error {}

export function taskIdFor(batchId: string, runId: number, documentId: string): string {
  return `${batchId}-r${runId}-${documentId}`;
}

/** The event type a submission stands for, as history and metrics name it. */
export function eventTypeOf(s: Submission): string {
  switch (s.kind) {
    case "action":
      return s.action;
    case "report":
      return s.report.type;
    case "system":
      return s.event.type;
    case "setBudget":
      return "budget";
    case "addDocuments":
      return "DOCUMENTS_ADDED";
    case "removeDocuments":
      return "DOCUMENTS_REMOVED";
    case "cacheHit":
      return "TASK_COMPLETED";
  }
}
