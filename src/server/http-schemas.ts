/**
 * Request bodies of the REST API (see the README's API section), in snake_case. Every
 * handler parses with these; a failure answers 400 naming the field.
 */
import { z } from "zod";
import { ANALYSIS_MODES, EXPIRY_POLICIES, PROVIDER_KINDS } from "../vocabulary";
import { actionSchema } from "../machines/batch.events";
import { outputSchemaProblems } from "../output-schema";
import { priceSchema } from "../pricing";

const ratio = z.number().min(0).max(1);
/** A budget in USD: at most a billion, which no batch reaches and keeps sums exact in a double. */
const budgetUsd = z.number().min(0).max(1_000_000_000);

/** Field limits of the API (the README's limits table). */
export const LIMITS = {
  batchName: 200,
  documentName: 255,
  instructions: 100_000,
  model: 200,
  reason: 2000,
  /** The whole `context` of an action, as JSON: it is kept in the batch's history. */
  contextBytes: 16 * 1024,
  /** Documents one JSON request may carry: add more in pages, or as one zip archive. */
  documentsPerRequest: 1000,
  /** Queue positions, priorities and versions stay well inside PostgreSQL's integer. */
  position: 1_000_000,
  version: 2_147_483_647,
} as const;

export const documentInputSchema = z
  .object({
    name: z.string().trim().min(1).max(LIMITS.documentName),
    content: z.string().optional(),
    content_base64: z.string().optional(),
    mime_type: z.string().trim().min(3).max(255).optional(),
  })
  .refine((d) => (d.content === undefined) !== (d.content_base64 === undefined), {
    message: "give exactly one of content or content_base64",
  })
  .refine((d) => d.content_base64 === undefined || /^[A-Za-z0-9+/\r\n]*={0,2}\s*$/.test(d.content_base64), {
    message: "content_base64 is not valid base64",
    path: ["content_base64"],
  });
export type DocumentInput = z.infer<typeof documentInputSchema>;

export const analysisSchema = z.object({
  instructions: z.string().trim().min(1).max(LIMITS.instructions),
  output_schema: z
    .record(z.string(), z.unknown())
    .superRefine((schema, ctx) => {
      for (const message of outputSchemaProblems(schema)) ctx.addIssue({ code: "custom", message });
    })
    .optional(),
  provider: z.enum(PROVIDER_KINDS).optional(),
  model: z.string().trim().min(1).max(LIMITS.model).optional(),
  temperature: z.number().min(0).max(2).optional(),
  max_tokens: z.number().int().min(1).max(1_000_000).optional(),
  /** USD per million tokens, over the price table's entry for the model (or for a model it lacks). */
  price: priceSchema.pick({ input_per_mtok: true, cached_input_per_mtok: true, output_per_mtok: true }).strict().optional(),
  /** The model's context window in tokens, over the price table's. */
  context_tokens: z.number().int().min(256).max(100_000_000).optional(),
  failure_tolerance: ratio.optional(),
  staging_tolerance: ratio.optional(),
  /** Most the batch may cost, in USD; change it later with POST /api/batches/:id/budget. */
  budget_usd: budgetUsd.optional(),
  /** `batch`: the provider's batch API at its batch price (OpenAI or Anthropic), instead of one request per task. */
  mode: z.enum(ANALYSIS_MODES).optional(),
  /** Batch lane: what becomes of a task whose line the provider let expire or cancelled. */
  on_expiry: z.enum(EXPIRY_POLICIES).optional(),
  /** Take an earlier answer to the same document and analysis instead of paying for it again (see the result cache); unset: true. */
  cache: z.boolean().optional(),
}).refine((a) => !(a.mode === "batch" && a.provider === "local"), {
  message: "the local analyzer has no batch API: mode batch needs provider openai or anthropic",
  path: ["mode"],
});
export type AnalysisInput = z.infer<typeof analysisSchema>;

export const createBatchSchema = z.object({
  name: z.string().trim().min(1).max(LIMITS.batchName),
  analysis: analysisSchema,
  documents: z.array(documentInputSchema).max(LIMITS.documentsPerRequest).default([]),
  priority: z.number().int().min(-1000).max(1000).default(0),
});

const version = z.number().int().min(0).max(LIMITS.version);
const position = z.number().int().min(1).max(LIMITS.position);
const reason = z.string().max(LIMITS.reason);

/** `context.reason`, as the README's action body shows; `reason` and `position` at the top level are accepted too. */
const actionContextSchema = z
  .object({
    reason: reason.optional(),
    position: position.optional(),
  })
  .catchall(z.unknown())
  .refine((c) => Buffer.byteLength(JSON.stringify(c)) <= LIMITS.contextBytes, {
    message: `is larger than ${LIMITS.contextBytes} bytes as JSON`,
  });

export const actionBodySchema = z.object({
  action: actionSchema,
  context: actionContextSchema.default({}),
  expected_version: version.optional(),
});

export const namedActionBodySchema = z
  .object({
    context: actionContextSchema.default({}),
    reason: reason.optional(),
    position: position.optional(),
    expected_version: version.optional(),
  })
  .default({ context: {} });

/** A new budget, or none (`null`). */
export const budgetBodySchema = z
  .object({
    budget_usd: budgetUsd.nullable(),
    expected_version: z.number().int().min(0).max(LIMITS.version).optional(),
  })
  .strict();

export const addDocumentsSchema = z.object({
  documents: z.array(documentInputSchema).min(1).max(LIMITS.documentsPerRequest),
  expected_version: version.optional(),
});

/** A batch's state as the API shows it and `?status=` filters by. */
export const BATCH_STATUSES = ["SAVED", "STAGING", "STAGED", "ANALYZING", "PAUSED", "COMPLETED", "FAILED", "FAILED_STAGING", "CANCELLED"] as const;
export const batchStatusSchema = z.enum(BATCH_STATUSES);

export const listQuerySchema = z.object({
  status: z
    .string()
    .transform((s) => s.split(",").map((x) => x.trim().toUpperCase()).filter(Boolean))
    .pipe(z.array(batchStatusSchema))
    .optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  offset: z.coerce.number().int().min(0).max(LIMITS.version).default(0),
});

export const historyQuerySchema = z.object({
  after_seq: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
  /** Newest first: the entries just before this seq (for a client that shows the latest). */
  before_seq: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
  limit: z.coerce.number().int().min(1).max(5000).default(1000),
});

export const documentsQuerySchema = z.object({
  after_position: z.coerce.number().int().min(-1).default(-1),
  limit: z.coerce.number().int().min(1).max(5000).default(1000),
});

export const resultsQuerySchema = z.object({
  format: z.enum(["json", "jsonl", "csv"]).default("json"),
  /** With `limit` (JSON only): one page of results instead of the whole export. */
  after_position: z.coerce.number().int().min(-1).max(Number.MAX_SAFE_INTEGER).default(-1),
  limit: z.coerce.number().int().min(1).max(5000).optional(),
});

export const reorderSchema = z.object({
  batch_id: z.uuid(),
  position,
});
