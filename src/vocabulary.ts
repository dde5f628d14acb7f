/**
 * The names that cross a boundary — between the machine and the store, the store and the
 * API, the workers and the store, the server and the UI — declared once. It imports
 * nothing, so the machine, the workers, the server and the UI (type-only) can all use it.
 */

/** A batch's top-level state, as stored in `batches.status`. */
export const BATCH_STATUSES = [
  "SAVED",
  "STAGING",
  "STAGED",
  "ANALYZING",
  "PAUSED",
  "COMPLETED",
  "FAILED",
  "FAILED_STAGING",
  "CANCELLED",
  "DELETED",
] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

/** The substates of ANALYZING, as stored in `batches.substate`. */
export const SUBSTATES = ["queued", "running"] as const;
export type Substate = (typeof SUBSTATES)[number] | null;

/** A state as history and the API write it: `STATUS` or `STATUS.substate`. */
export type StateRef = BatchStatus | `${BatchStatus}.${NonNullable<Substate>}`;

/** Where a unit of work (a document being staged, a task being analysed) stands in its run. */
export const UNIT_STATUSES = ["pending", "running", "succeeded", "failed", "cancelled"] as const;
export type UnitStatus = (typeof UNIT_STATUSES)[number];
/** What the store found for a reported unit: its stored status, or `missing` (unknown, or of another run). */
export type PriorStatus = UnitStatus | "missing";

export const WORK_KINDS = ["staging", "analysis"] as const;
export type WorkKind = (typeof WORK_KINDS)[number];

/** What became of one submission; recorded in history. */
export const OUTCOMES = ["accepted", "refused", "ignored", "version_conflict", "not_found", "invalid"] as const;
export type Outcome = (typeof OUTCOMES)[number];
/** A history entry's outcome: a submission's, or `upgraded` (the stored snapshot was brought to this machine's version; state and version unchanged). */
export type HistoryOutcome = Outcome | "upgraded";

/** Who asked for a change; recorded in history. */
export const SOURCES = ["user", "worker", "system"] as const;
export type Source = (typeof SOURCES)[number];

/**
 * Why a submission was not accepted, as a code callers branch on (the human sentence beside
 * it is for people and may change).
 */
export const REASON_CODES = [
  /** The machine has no transition for this event in this state. */
  "not_allowed",
  /** `expected_version` / If-Match named another version. */
  "version_conflict",
  /** A report of an earlier run. */
  "stale_run",
  /** A report for a unit that already settled. */
  "duplicate",
  /** A report naming no unit of this batch's current run. */
  "unknown_unit",
  /** A report from a job that is no longer the unit's current dispatch. */
  "stale_dispatch",
  /** A withdrawal naming no job in flight. */
  "nothing_in_flight",
  /** A document removal naming no document of this batch. */
  "no_such_document",
  /** A submission that cannot be stored (e.g. text PostgreSQL refuses). */
  "invalid_input",
  /** The batch does not exist (or was deleted earlier in the same group). */
  "not_found",
  /** A task start the batch's budget cannot afford: the batch paused itself instead. */
  "over_budget",
] as const;
export type ReasonCode = (typeof REASON_CODES)[number];

/** Why a PAUSED batch is paused: a user asked, or the next task would have gone past the budget. */
export const PAUSE_REASONS = ["user", "budget"] as const;
export type PauseReason = (typeof PAUSE_REASONS)[number];

/** LLM providers a batch's analysis may name. */
export const PROVIDER_KINDS = ["openai", "anthropic", "local"] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

/** The PostgreSQL NOTIFY channel on which every committed batch change is announced. */
export const BATCH_CHANNEL = "tranche_batches";

/** The payload of a NOTIFY on `BATCH_CHANNEL`, and of each live-stream event. */
export interface BatchChange {
  batch_id: string;
  /** The batch's tenant, so each stream shows only its own; never sent to clients. */
  tenant?: string;
  version: number;
  status: BatchStatus;
  substate: Substate;
  deleted: boolean;
  /** Commit time, ms since the epoch. */
  at: number;
}

/** How a batch's analysis reaches the provider: one request per task, or the provider's batch API at its batch price. */
export const ANALYSIS_MODES = ["live", "batch"] as const;
export type AnalysisMode = (typeof ANALYSIS_MODES)[number];

/** What becomes of a task whose provider batch line expired or was cancelled by the provider: sent again in a new provider batch, sent live, or failed. */
export const EXPIRY_POLICIES = ["resubmit", "live", "fail"] as const;
export type ExpiryPolicy = (typeof EXPIRY_POLICIES)[number];

/** Providers whose batch API the batch lane speaks. */
export const BATCH_PROVIDER_KINDS = ["openai", "anthropic"] as const;
export type BatchProviderKind = (typeof BATCH_PROVIDER_KINDS)[number];

/**
 * Where a provider batch stands: `submitting` from the moment the store recorded it until the
 * provider accepted it, then the provider's progress in the same words for every provider.
 * `ended` and `failed` are final, and recorded only once every line has been reported: until
 * then a provider batch the provider finished reads `finalizing`.
 */
export const PROVIDER_BATCH_STATUSES = ["submitting", "validating", "in_progress", "finalizing", "cancelling", "ended", "failed"] as const;
export type ProviderBatchStatus = (typeof PROVIDER_BATCH_STATUSES)[number];

/** One provider batch of the batch lane, as the batch's JSON shows it (`provider_batches`). */
export interface ProviderBatchView {
  id: string;
  provider: BatchProviderKind;
  provider_id: string | null;
  run_id: number;
  status: ProviderBatchStatus;
  provider_status: string | null;
  tasks: number;
  request_counts: { total: number; succeeded: number; failed: number } | null;
  errors: string[] | null;
  created_at: string;
  expires_at: string | null;
  ended_at: string | null;
}

/** What a batch's current results cost, as its JSON shows it (`usage`). */
export interface UsageView {
  requests: number;
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  /** Null when some task's model has no known price (see `note`). */
  cost_usd: number | null;
  saved_usd: number;
  note: string | null;
}
