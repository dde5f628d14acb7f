/**
 * Request bodies of the REST API (SPEC §3–4), snake_case as the seeds have them. Every
 * handler parses with these; a failure answers 400 naming the field.
 */
import Ajv from "ajv";
import { z } from "zod";
import { actionSchema } from "../machines/batch.events";

const ajv = new Ajv({ strict: false, allErrors: true });
const ratio = z.number().min(0).max(1);

export const documentInputSchema = z
  .object({
    name: z.string().trim().min(1).max(255),
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
  instructions: z.string().trim().min(1).max(100_000),
  output_schema: z
    .record(z.string(), z.unknown())
    .refine((s) => ajv.validateSchema(s) === true, { message: "is not a valid JSON Schema" })
    .optional(),
  provider: z.enum(["openai", "anthropic", "local"]).optional(),
  model: z.string().trim().min(1).max(200).optional(),
  temperature: z.number().min(0).max(2).optional(),
  max_tokens: z.number().int().min(1).max(1_000_000).optional(),
  failure_tolerance: ratio.optional(),
  staging_tolerance: ratio.optional(),
});
export type AnalysisInput = z.infer<typeof analysisSchema>;

export const createBatchSchema = z.object({
  name: z.string().trim().min(1).max(200),
  analysis: analysisSchema,
  documents: z.array(documentInputSchema).max(100_000).default([]),
  priority: z.number().int().min(-1000).max(1000).default(0),
});

const version = z.number().int().min(0);

/** `context.reason` as in SPEC §3; `reason` and `position` at the top level are accepted too. */
const actionContextSchema = z
  .object({
    reason: z.string().max(2000).optional(),
    position: z.number().int().min(1).optional(),
  })
  .catchall(z.unknown());

export const actionBodySchema = z.object({
  action: actionSchema,
  context: actionContextSchema.default({}),
  expected_version: version.optional(),
});

export const namedActionBodySchema = z
  .object({
    context: actionContextSchema.default({}),
    reason: z.string().max(2000).optional(),
    position: z.number().int().min(1).optional(),
    expected_version: version.optional(),
  })
  .default({ context: {} });

export const addDocumentsSchema = z.object({
  documents: z.array(documentInputSchema).min(1).max(100_000),
  expected_version: version.optional(),
});

export const listQuerySchema = z.object({
  status: z
    .string()
    .transform((s) => s.split(",").map((x) => x.trim().toUpperCase()).filter(Boolean))
    .pipe(z.array(z.enum(["SAVED", "STAGING", "STAGED", "ANALYZING", "PAUSED", "COMPLETED", "FAILED", "FAILED_STAGING", "CANCELLED"])))
    .optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  offset: z.coerce.number().int().min(0).default(0),
});

export const historyQuerySchema = z.object({
  after_seq: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(5000).default(1000),
});

export const resultsQuerySchema = z.object({
  format: z.enum(["json", "jsonl", "csv"]).default("json"),
});

export const reorderSchema = z.object({
  batch_id: z.uuid(),
  position: z.number().int().min(1),
});
