/**
 * The job registry: every queue Tranche uses, its payload type and how its job ids are made.
 * Job ids are derived from stable keys (no `:`, never a bare integer), so relaying the same
 * dispatch twice is harmless: BullMQ ignores a duplicate id while the job exists. Each
 * dispatch of a unit has its own number in the id, because BullMQ also ignores an add whose
 * id belongs to a job that is finishing or finished: a unit handed back by its job (its start
 * refused by a pause) and dispatched again must never meet that old job.
 */
import { Queue, type ConnectionOptions, type DefaultJobOptions } from "bullmq";
import type { WorkerReport } from "../machines/batch.events";
import type { ProviderUsage } from "./providers/provider";

/** A task's outcome as the analysis worker reports it. */
export type TaskOutcome = Extract<WorkerReport, { type: "TASK_COMPLETED" | "TASK_FAILED" }>;

/** Stage (extract, chunk, encode) one document of one run. */
export interface StagingJob {
  batchId: string;
  runId: number;
  documentId: string;
  /** Which dispatch of the document this job is (its `dispatches` count when dispatched). */
  dispatch: number;
}

/** Analyse one task (one document of one run). */
export interface AnalysisJob {
  batchId: string;
  runId: number;
  taskId: string;
  /** Which dispatch of the task this job is (its `dispatches` count when dispatched). */
  dispatch: number;
  /** What earlier runs of this job billed before failing in a way worth retrying; added to the task's usage. */
  spent?: ProviderUsage;
  /** The outcome of a run that reached the provider's answer but not the report: the next run reports it, without a call. */
  outcome?: TaskOutcome;
}

/**
 * The provider batch lane's work: `submit` sends a run's dispatched tasks that no provider batch
 * carries yet (read from PostgreSQL when it runs, so any number of these jobs may overlap);
 * `poll` looks at one provider batch until it ends and reports its lines.
 */
export type LaneJob =
  | { kind: "submit"; batchId: string; runId: number }
  | { kind: "poll"; batchId: string; runId: number; providerBatchId: string; intervalMs?: number };

export const QUEUE_NAMES = { staging: "staging", analysis: "analysis", lane: "provider-batches" } as const;

export const jobIds = {
  staging: (j: StagingJob) => `stage-${j.batchId}-r${j.runId}-${j.documentId}-d${j.dispatch}`,
  analysis: (j: Pick<AnalysisJob, "taskId" | "dispatch">) => `task-${j.taskId}-d${j.dispatch}`,
  /** One per dispatch (named by its first task), or per occasion (`reason`) for the reconciler and the poller. */
  laneSubmit: (j: { batchId: string; runId: number; key: string }) => `lane-submit-${j.batchId}-r${j.runId}-${j.key}`,
  /** One poller per provider batch at a time. */
  lanePoll: (providerBatchId: string) => `lane-poll-${providerBatchId}`,
};

/** Submit jobs leave no trace when done, so the same occasion may submit again later. */
export const LANE_SUBMIT_OPTIONS = { removeOnComplete: true, removeOnFail: { count: 1000 } };

/**
 * attempts: how often BullMQ runs a job that throws (a stalled job — its worker died — is
 * run again too). Completed jobs are kept a while for the dashboard, then trimmed.
 */
export const defaultJobOptions: DefaultJobOptions = {
  attempts: 3,
  backoff: { type: "exponential", delay: 1000 },
  removeOnComplete: { count: 2000, age: 24 * 3600 },
  removeOnFail: { count: 5000, age: 7 * 24 * 3600 },
};

export interface Queues {
  staging: Queue<StagingJob>;
  analysis: Queue<AnalysisJob>;
  lane: Queue<LaneJob>;
  all: Queue[];
  close(): Promise<void>;
}

/** `onError`: a queue's connection errors (Redis away), which BullMQ would otherwise print to the console. */
export function createQueues(connection: ConnectionOptions, prefix: string, onError?: (err: Error) => void): Queues {
  const staging = new Queue<StagingJob>(QUEUE_NAMES.staging, { connection, prefix, defaultJobOptions });
  const analysis = new Queue<AnalysisJob>(QUEUE_NAMES.analysis, { connection, prefix, defaultJobOptions });
  const lane = new Queue<LaneJob>(QUEUE_NAMES.lane, { connection, prefix, defaultJobOptions });
  const all = [staging, analysis, lane] as Queue[];
  if (onError) for (const q of all) q.on("error", onError);
  return {
    staging,
    analysis,
    lane,
    all,
    close: async () => {
      await Promise.all(all.map((q) => q.close()));
    },
  };
}
