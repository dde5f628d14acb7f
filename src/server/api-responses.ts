/**
 * What the REST API answers, as zod schemas: the OpenAPI document's response schemas are
 * generated from these, and the API tests check every answer against that document. Objects
 * are loose (further fields allowed), so a field added to an answer is an addition, not a break.
 */
import { z } from "zod";
import { ACTIONS, UNIT_STATUSES } from "../machines/batch.events";
import { ROLES } from "../auth/roles";
import { BATCH_PROVIDER_KINDS, PROVIDER_BATCH_STATUSES } from "../vocabulary";
import { BATCH_STATUSES } from "./http-schemas";

const count = z.number().int().min(0);
const timestamp = z.iso.datetime({ offset: true });

export const progressSchema = z.looseObject({
  total: count,
  pending: count,
  running: count,
  succeeded: count,
  failed: count,
  cancelled: count,
});

const usd = z.number().min(0);

export const estimateSchema = z
  .looseObject({
    model: z.string(),
    provider: z.string(),
    documents: count.meta({ description: "Staged documents that will reach the provider" }),
    cached_documents: count.meta({ description: "Staged documents a cached result answers: left out of the estimate" }),
    requests: count.meta({ description: "Provider requests when every answer is valid the first time (map-reduce steps included)" }),
    input_tokens: count.meta({ description: "Their prompt tokens (instructions and schema included)" }),
    requests_max: count.meta({ description: "Requests with every re-ask" }),
    input_tokens_max: count,
    output_tokens_max: count.nullable().meta({ description: "Every answer at its token ceiling; null when nothing bounds an answer" }),
    cost_usd_max: usd.nullable().meta({ description: "The most the batch can cost; null without a price or a ceiling (see note)" }),
    map_reduce_documents: count,
    price: z.looseObject({ input_per_mtok: usd, output_per_mtok: usd }).nullable(),
    price_checked_at: z.string().nullable(),
    price_source: z.string().nullable(),
    note: z.string().nullable(),
    computed_at: timestamp,
  })
  .meta({ description: "What the batch will cost at most, computed once when its staging finished" });

export const usageSchema = z
  .looseObject({
    requests: count,
    input_tokens: count,
    cached_input_tokens: count,
    output_tokens: count,
    cost_usd: usd.nullable().meta({ description: "Null when some task's model has no known price" }),
    saved_usd: usd.meta({ description: "What cached results avoided paying" }),
    note: z.string().nullable(),
  })
  .meta({ description: "What the current results cost, updated with every settled task" });

export const providerBatchSchema = z.looseObject({
  id: z.uuid().meta({ description: "Ours, sent to the provider as metadata" }),
  provider: z.enum(BATCH_PROVIDER_KINDS),
  provider_id: z.string().nullable().meta({ description: "The provider's id; null while submitting" }),
  run_id: count,
  status: z.enum(PROVIDER_BATCH_STATUSES),
  provider_status: z.string().nullable().meta({ description: "The provider's own word for it (completed, expired, canceling…)" }),
  tasks: count,
  request_counts: z.looseObject({ total: count, succeeded: count, failed: count }).nullable(),
  errors: z.array(z.string()).nullable(),
  created_at: timestamp,
  expires_at: timestamp.nullable(),
  ended_at: timestamp.nullable(),
});

export const batchSchema = z.looseObject({
  id: z.uuid(),
  name: z.string(),
  status: z.enum(BATCH_STATUSES),
  substate: z.enum(["queued", "running"]).nullable(),
  queue_position: z.number().int().min(0).nullable().meta({ description: "0 while running, 1… while queued, null outside the queue" }),
  priority: z.number().int(),
  version: z.number().int().min(1),
  run_id: count,
  allowed_actions: z.array(z.enum(ACTIONS)),
  progress: progressSchema.meta({ description: "The current run's analysis tasks" }),
  staging: progressSchema.meta({ description: "The current run's staging of documents" }),
  analysis: z.looseObject({ instructions: z.string() }).meta({ description: "The analysis definition as created" }),
  document_count: count,
  last_error: z.string().nullable(),
  estimate: estimateSchema.nullable(),
  usage: usageSchema,
  budget_usd: usd.nullable().meta({ description: "Most the batch may cost; null: no budget" }),
  reserved_usd: usd.meta({ description: "What tasks in flight hold of the budget" }),
  pause_reason: z.enum(["user", "budget"]).nullable(),
  created_at: timestamp,
  updated_at: timestamp,
  provider_batches: z
    .array(providerBatchSchema)
    .optional()
    .meta({ description: "Batch lane (analysis.mode batch) only, reading one batch: its provider batches, newest first (at most 50)" }),
  snapshot_error: z
    .looseObject({ code: z.literal("incompatible_snapshot"), error: z.string(), machine_version: z.number().int(), supported_machine_version: z.number().int() })
    .optional()
    .meta({ description: "In a list only: this install cannot read the batch's snapshot (a newer machine version wrote it), so no actions are offered; reading the batch alone answers 409 incompatible_snapshot" }),
});

export const batchAnswerSchema = z.looseObject({ success: z.literal(true), batch: batchSchema });

export const batchListSchema = z.looseObject({
  success: z.literal(true),
  batches: z.array(batchSchema),
  total: count,
  limit: count,
  offset: count,
});

export const actionAnswerSchema = z.looseObject({
  success: z.literal(true),
  previous_state: z.string(),
  current_state: z.enum(BATCH_STATUSES),
  allowed_actions: z.array(z.enum(ACTIONS)),
  version: z.number().int(),
  batch: batchSchema,
});

export const deletedAnswerSchema = z.looseObject({
  success: z.literal(true),
  previous_state: z.string(),
  current_state: z.literal("DELETED"),
  id: z.uuid(),
});

export const documentSchema = z.looseObject({
  id: z.uuid(),
  position: count,
  name: z.string(),
  mime_type: z.string(),
  size_bytes: count,
  sha256: z.string().nullable(),
  stage_run_id: count.nullable(),
  stage_status: z.enum(UNIT_STATUSES).nullable(),
  stage_error: z.string().nullable(),
  token_count: count.nullable(),
  chunk_count: count.nullable(),
  created_at: timestamp,
});

export const documentListSchema = z.looseObject({ success: z.literal(true), documents: z.array(documentSchema) });

export const documentsAddedSchema = z.looseObject({
  success: z.literal(true),
  version: z.number().int(),
  document_ids: z.array(z.uuid()),
  batch: batchSchema,
});

export const budgetAnswerSchema = z.looseObject({ success: z.literal(true), version: z.number().int(), batch: batchSchema });

export const documentRemovedSchema = z.looseObject({ success: z.literal(true), version: z.number().int(), batch: batchSchema });

export const historyEntrySchema = z.looseObject({
  seq: z.number().int().min(1),
  outcome: z.enum(["accepted", "refused", "ignored", "version_conflict", "not_found"]),
  event_type: z.string(),
  source: z.string(),
  from: z.string(),
  to: z.string(),
  version: z.number().int(),
  reason: z.string().nullable(),
  context: z.unknown(),
  event: z.unknown(),
  created_at: timestamp,
});

export const historySchema = z.looseObject({ success: z.literal(true), history: z.array(historyEntrySchema) });

export const resultRecordSchema = z.looseObject({
  document_id: z.uuid(),
  name: z.string(),
  mime_type: z.string(),
  status: z.enum([...UNIT_STATUSES, "staged", "staging", "stage_failed", "not_staged"]),
  output: z.unknown(),
  error: z.string().nullable(),
  input_tokens: count.nullable(),
  output_tokens: count.nullable(),
  document_tokens: count.nullable(),
  latency_ms: count.nullable(),
  attempts: count.nullable(),
  run_id: count.nullable(),
  requests: count.nullable().meta({ description: "Provider requests the document's analysis took (re-asks and map-reduce steps included), over every run since the last reset" }),
  cached_input_tokens: count.nullable(),
  cost_usd: usd.nullable().meta({ description: "What the document's analysis cost, over every run since the last reset; null without a price" }),
  cached: z.boolean().meta({ description: "Answered from the result cache" }),
  strategy: z.enum(["single", "map_reduce"]).nullable(),
});

export const resultsSchema = z.looseObject({ success: z.literal(true), batch_id: z.uuid(), results: z.array(resultRecordSchema) });

export const queueSchema = z.looseObject({
  success: z.literal(true),
  max_running_batches: z.number().int().min(1),
  running: z.array(batchSchema),
  queued: z.array(batchSchema),
});

export const healthSchema = z.looseObject({ success: z.literal(true), status: z.literal("ok") });

const checkSchema = z.looseObject({ ok: z.boolean(), error: z.string().optional() });
const checksSchema = z.looseObject({ postgres: checkSchema, redis: checkSchema, migrations: checkSchema });

export const readySchema = z.looseObject({ success: z.literal(true), status: z.literal("ready"), checks: checksSchema });

export const errorSchema = z.looseObject({
  success: z.literal(false),
  code: z.string().meta({ description: "Stable machine-readable code (see the error table)" }),
  error: z.string().meta({ description: "What was wrong, for a person" }),
});

/** 409 transition_refused and 412 version_conflict say where the batch stands. */
export const refusalSchema = z.looseObject({
  success: z.literal(false),
  code: z.string(),
  error: z.string(),
  current_state: z.string().optional(),
  allowed_actions: z.array(z.string()).optional(),
  version: z.number().int().optional(),
});

export const notReadySchema = z.looseObject({
  success: z.literal(false),
  code: z.literal("not_ready"),
  error: z.string(),
  status: z.literal("not_ready"),
  not_ready: z.array(z.enum(["postgres", "redis", "migrations"])),
  checks: checksSchema,
});

const keySchema = z.looseObject({ id: z.string(), name: z.string(), role: z.enum(ROLES), tenant: z.string() });

export const sessionSchema = z.looseObject({
  success: z.literal(true),
  authentication: z.enum(["keys", "off"]),
  key: keySchema,
});

export const signedOutSchema = z.looseObject({ success: z.literal(true) });

export const keyViewSchema = keySchema.extend({ created_at: timestamp, revoked_at: timestamp.nullable() });

export const keyCreatedSchema = keyViewSchema.extend({
  success: z.literal(true),
  key: z.string().meta({ description: "The secret, shown only in this answer" }),
});

export const keyListSchema = z.looseObject({ success: z.literal(true), keys: z.array(keyViewSchema) });

export const keyRevokedSchema = z.looseObject({ success: z.literal(true), key: keyViewSchema });
