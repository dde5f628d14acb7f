/**
 * The batch vocabulary: user actions, worker reports and the machine events they become.
 * Every boundary (HTTP body, worker report) parses with these schemas; the TypeScript
 * types are inferred from them so the vocabulary lives in exactly one place.
 */
import { z } from "zod";
import { BATCH_PROVIDER_KINDS, PROVIDER_BATCH_STATUSES, UNIT_STATUSES, WORK_KINDS } from "../vocabulary";

export { UNIT_STATUSES };
export type { PriorStatus, Source, UnitStatus, WorkKind } from "../vocabulary";

/** The user actions, in the order the UI shows them, plus `delete`. */
export const ACTIONS = [
  "stage",
  "run",
  "pause",
  "resume",
  "cancel",
  "reset",
  "restage",
  "rerun",
  "retry-failed",
  "delete",
] as const;
export const actionSchema = z.enum(ACTIONS);
export type Action = z.infer<typeof actionSchema>;

/** How a document was analysed: one request, or map-reduce over groups of chunks that fit the context window. */
export const ANALYSIS_STRATEGIES = ["single", "map_reduce"] as const;
export type AnalysisStrategy = (typeof ANALYSIS_STRATEGIES)[number];

export const workKindSchema = z.enum(WORK_KINDS);

const runId = z.number().int().nonnegative();
const count = z.number().int().nonnegative();
const prior = z.enum([...UNIT_STATUSES, "missing"]);
const error = z.string().min(1);
const usd = z.number().nonnegative().finite();

/**
 * What one settled task spent, as the store hands it to the machine (which sums it into the
 * batch's usage). `costUsd` is null when the model has no known price.
 */
const taskUsage = z.object({
  requests: count,
  inputTokens: count,
  cachedInputTokens: count,
  outputTokens: count,
  costUsd: usd.nullable(),
});
export type TaskUsage = z.infer<typeof taskUsage>;
/** What the task holds of the batch's budget (its reservation when it started); 0 when none. */
const held = usd.optional();

/**
 * Events as the machine sees them. Worker reports reach the machine only after the store
 * has looked up the unit they name (`from`), so that the machine itself decides whether a
 * report is new, a duplicate or stale.
 */
export const machineEventSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("stage") }),
  z.object({ type: z.literal("run") }),
  z.object({ type: z.literal("pause") }),
  z.object({ type: z.literal("resume"), position: z.number().int().min(1).optional() }),
  z.object({ type: z.literal("cancel") }),
  z.object({ type: z.literal("reset") }),
  z.object({ type: z.literal("restage") }),
  z.object({ type: z.literal("rerun") }),
  z.object({ type: z.literal("retry-failed") }),
  z.object({ type: z.literal("delete") }),
  z.object({ type: z.literal("DOCUMENTS_ADDED"), count }),
  z.object({ type: z.literal("DOCUMENTS_REMOVED"), count }),
  z.object({ type: z.literal("START") }),
  /** A new budget (USD) for the batch, or none (null). */
  z.object({ type: z.literal("SET_BUDGET"), budgetUsd: usd.nullable() }),
  z.object({ type: z.literal("DOCUMENT_STAGED"), runId, documentId: z.string(), from: prior }),
  z.object({ type: z.literal("DOCUMENT_STAGE_FAILED"), runId, documentId: z.string(), from: prior, error }),
  /**
   * `dispatch`: which dispatch of the task the asking job is; `dispatched`: how often the store
   * has dispatched the task. A job of an earlier dispatch is stale and must not start the task.
   * `reserveUsd`: the most this start may cost (every call, re-asks and map-reduce steps
   * included, each answer at its token ceiling, at the batch's price); null when that cannot be
   * known (no price, or no ceiling on the answer). Absent: nothing to reserve.
   */
  z.object({
    type: z.literal("TASK_STARTED"),
    runId,
    taskId: z.string(),
    from: prior,
    dispatch: count.optional(),
    dispatched: count.optional(),
    reserveUsd: usd.nullable().optional(),
    heldUsd: held,
  }),
  z.object({ type: z.literal("TASK_COMPLETED"), runId, taskId: z.string(), from: prior, usage: taskUsage.optional(), heldUsd: held }),
  z.object({ type: z.literal("TASK_FAILED"), runId, taskId: z.string(), from: prior, error, usage: taskUsage.optional(), heldUsd: held }),
  z.object({ type: z.literal("FATAL_ERROR"), runId, error }),
  z.object({ type: z.literal("JOBS_WITHDRAWN"), runId, kind: workKindSchema, count, heldUsd: held }),
  /** The batch lane asks to submit a provider batch of started tasks: allowed only while the run goes on. */
  z.object({ type: z.literal("PROVIDER_BATCH_OPENED"), runId }),
  /** What a provider says of one of the batch's provider batches; recorded in any state. */
  z.object({ type: z.literal("PROVIDER_BATCH_UPDATED"), runId }),
]);
export type MachineEvent = z.infer<typeof machineEventSchema>;
export type MachineEventType = MachineEvent["type"];
export type EventOf<T extends MachineEventType> = Extract<MachineEvent, { type: T }>;

const chunkSchema = z.object({
  index: count,
  text: z.string(),
  tokens: count,
  start: count,
  end: count,
});
export type Chunk = z.infer<typeof chunkSchema>;

const reportBase = { batchId: z.uuid(), runId };

/**
 * What analysing one staged document will take, counted by staging from its real tokens with the
 * batch's instructions and schema: the requests and prompt tokens when every answer is valid the
 * first time, and the most of each when every answer is re-asked and at its token ceiling.
 * `outputTokensMax` is null when nothing bounds an answer (no `max_tokens`, a model of unknown limits).
 */
export const documentPlanSchema = z.object({
  strategy: z.enum(ANALYSIS_STRATEGIES),
  requests: count,
  inputTokens: count,
  requestsMax: count,
  inputTokensMax: count,
  outputTokensMax: count.nullable(),
});
export type DocumentPlan = z.infer<typeof documentPlanSchema>;

/** What a task's provider calls cost, summed over all of them; `costUsd` is null when the model has no known price. */
const usageFields = {
  requests: count.optional(),
  inputTokens: count.optional(),
  cachedInputTokens: count.optional(),
  outputTokens: count.optional(),
  costUsd: z.number().nonnegative().finite().nullable().optional(),
  strategy: z.enum(ANALYSIS_STRATEGIES).optional(),
};

/** What workers send. Parsed at the boundary; the store turns each into a machine event plus data to record. */
export const workerReportSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("DOCUMENT_STAGED"),
    ...reportBase,
    documentId: z.uuid(),
    text: z.string(),
    chunks: z.array(chunkSchema),
    tokenCount: count,
    textSha256: z.string().regex(/^[0-9a-f]{64}$/),
    plan: documentPlanSchema.optional(),
  }),
  z.object({ type: z.literal("DOCUMENT_STAGE_FAILED"), ...reportBase, documentId: z.uuid(), error }),
  /**
   * A worker asks to start a task. Accepted only while the batch runs and its budget affords the
   * task, so nothing starts after a pause is accepted. `dispatch`: the job's dispatch number (part
   * of its id), so a stale job is told apart from the current one. `spentUsd`: what earlier runs of
   * the same job already spent (it is added to the task's reservation).
   */
  z.object({ type: z.literal("TASK_STARTED"), ...reportBase, taskId: z.string().min(1), dispatch: count.optional(), spentUsd: usd.optional() }),
  z.object({
    type: z.literal("TASK_COMPLETED"),
    ...reportBase,
    taskId: z.string().min(1),
    output: z.unknown(),
    ...usageFields,
    latencyMs: count.optional(),
  }),
  z.object({
    type: z.literal("TASK_FAILED"),
    ...reportBase,
    taskId: z.string().min(1),
    error,
    ...usageFields,
    latencyMs: count.optional(),
  }),
  z.object({ type: z.literal("FATAL_ERROR"), ...reportBase, error }),
  z.object({
    type: z.literal("JOBS_WITHDRAWN"),
    ...reportBase,
    kind: workKindSchema,
    ids: z.array(z.string().min(1)),
    /** The dispatch number of each withdrawn job, in the order of `ids`: only a unit still on that dispatch is released. */
    dispatches: z.array(count).optional(),
    /** Withdrawn from this provider batch: only tasks it still carries go back. */
    providerBatchId: z.uuid().optional(),
  }),
  /** The batch lane is about to submit these started tasks as one provider batch (its id is ours, chosen first). */
  z.object({
    type: z.literal("PROVIDER_BATCH_OPENED"),
    ...reportBase,
    providerBatchId: z.uuid(),
    provider: z.enum(BATCH_PROVIDER_KINDS),
    taskIds: z.array(z.string().min(1)).min(1),
  }),
  z.object({
    type: z.literal("PROVIDER_BATCH_UPDATED"),
    ...reportBase,
    providerBatchId: z.uuid(),
    status: z.enum(PROVIDER_BATCH_STATUSES),
    providerId: z.string().min(1).optional(),
    providerStatus: z.string().optional(),
    requestCounts: z.object({ total: count, succeeded: count, failed: count }).optional(),
    expiresAt: z.iso.datetime().optional(),
    errors: z.array(z.string()).optional(),
  }),
]);
export type WorkerReport = z.infer<typeof workerReportSchema>;

