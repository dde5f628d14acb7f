/**
 * The OpenAPI 3.1 document of the REST API, generated from the zod schemas the routes parse
 * with (`http-schemas.ts`) and the schemas of their answers (`api-responses.ts`), through
 * zod 4's own JSON Schema output (draft 2020-12, the dialect of OpenAPI 3.1). Nothing here is
 * a hand-written copy of a schema: the table below only says which schema belongs to which
 * route. A test walks the Express router and fails when a route is missing from it.
 */
import { z } from "zod";
import { ACTIONS } from "../machines/batch.events";
import * as res from "./api-responses";
import {
  actionBodySchema,
  addDocumentsSchema,
  budgetBodySchema,
  analysisSchema,
  createBatchSchema,
  historyQuerySchema,
  listQuerySchema,
  namedActionBodySchema,
  reorderSchema,
  resultsQuerySchema,
} from "./http-schemas";
import { createKeySchema } from "./access-routes";
import { ACTION_ROUTES } from "./routes";

type JsonSchema = Record<string, unknown>;
type Method = "get" | "post" | "delete";

/** The error codes each status carries (the README's error table). */
export const ERROR_CODES: Record<number, { name: string; codes: Record<string, string> }> = {
  400: {
    name: "BadRequest",
    codes: {
      validation_failed: "a field is missing or wrong; `error` names each field",
      malformed_json: "the body is not JSON",
      malformed_multipart: "the multipart form cannot be read",
      malformed_url: "the URL's percent-encoding is broken",
      bad_request: "the request cannot be read",
    },
  },
  403: {
    name: "Forbidden",
    codes: {
      cross_origin: "a state-changing request from another site's page",
      host_not_allowed: "a Host this server does not answer to",
      forbidden: "`/metrics` from beyond loopback without an admin key (once authentication exists)",
    },
  },
  401: { name: "Unauthorized", codes: { unauthorized: "API keys are on and the request has no valid key" } },
  404: { name: "NotFound", codes: { not_found: "unknown batch, document or route" } },
  409: {
    name: "Conflict",
    codes: {
      transition_refused: "the machine refuses the action in the current state; carries `current_state`, `allowed_actions`, `version`",
      incompatible_snapshot: "the batch was stored by a newer machine version; carries `machine_version`, `supported_machine_version`",
    },
  },
  412: { name: "VersionConflict", codes: { version_conflict: "`If-Match` / `expected_version` is stale; carries `current_state`, `allowed_actions`, `version`" } },
  413: { name: "PayloadTooLarge", codes: { payload_too_large: "body over `BODY_LIMIT`, or a document over `MAX_DOCUMENT_BYTES`" } },
  415: {
    name: "UnsupportedMediaType",
    codes: {
      unsupported_media_type: "a body type the route does not take",
      unsupported_charset: "a charset other than UTF-8",
      unsupported_encoding: "a content encoding the server does not take",
    },
  },
  431: { name: "HeadersTooLarge", codes: { headers_too_large: "the request's headers are larger than the server reads" } },
  429: { name: "RateLimited", codes: { rate_limited: "too many requests from one key or address; carries `retry_after` (also the `Retry-After` header)" } },
  500: { name: "InternalError", codes: { internal_error: "a bug: logged with the request" } },
  503: {
    name: "Unavailable",
    codes: {
      unavailable: "PostgreSQL does not answer; carries `Retry-After`",
      not_ready: "PostgreSQL, Redis or the migrations are not ready (`/readyz`)",
    },
  },
};

/** JSON Schema of a zod schema; `input` for what a client sends, `output` for what it receives. */
export function jsonSchema(schema: z.ZodType, io: "input" | "output"): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { target: "draft-2020-12", io }) as JsonSchema;
  return rest;
}

/** Whether the schema accepts a missing value (optional, or with a default). */
const isOptional = (schema: z.ZodType) => schema.safeParse(undefined).success;

interface Answer {
  description: string;
  /** JSON answer schema. */
  json?: z.ZodType;
  /** Other media types, each with its schema. */
  media?: Record<string, JsonSchema>;
}

interface Operation {
  method: Method;
  /** Express form: `/api/batches/:id`. */
  path: string;
  summary: string;
  tag: "batches" | "documents" | "queue" | "live" | "access" | "operations";
  query?: z.ZodObject;
  body?: z.ZodType;
  /** The route also takes multipart/form-data with these fields. */
  multipart?: JsonSchema;
  ifMatch?: boolean;
  ok: Record<number, Answer>;
  errors: number[];
}

const uuidParam = (name: string, what: string) => ({ name, in: "path", required: true, description: what, schema: { type: "string", format: "uuid" } });

const multipartCreate: JsonSchema = {
  type: "object",
  required: ["name"],
  properties: {
    name: { type: "string", description: "The batch's name" },
    analysis: { type: "string", description: "The analysis definition as JSON", contentMediaType: "application/json", contentSchema: jsonSchema(analysisSchema, "input") },
    instructions: { type: "string", description: "Instead of `analysis`: the instructions alone" },
    priority: { type: "string", description: "An integer from -1000 to 1000" },
    files: { type: "array", items: { type: "string", contentMediaType: "application/octet-stream" }, description: "The documents" },
  },
};
const multipartFiles: JsonSchema = {
  type: "object",
  properties: { files: { type: "array", items: { type: "string", contentMediaType: "application/octet-stream" } } },
};

const ACTION_ERRORS = [400, 403, 404, 409, 412, 415];

const actionSummary: Record<string, string> = {
  stage: "Stage the documents (a new run)",
  run: "Run a staged batch: enter the batch queue",
  pause: "Pause: no new task starts",
  resume: "Resume a paused batch (at the end of the queue, or at `position`)",
  cancel: "Cancel: pending work dropped, finished results kept",
  "retry-failed": "A new run over the tasks that did not succeed",
  rerun: "A complete new run that analyses by itself once staged",
  "reprocess-staging": "Restage: clear the previous output and stage again",
  "reset-to-prestage": "Reset to SAVED: delete staging output and results",
};

/** Every route of the API and the operator's endpoints. */
export const OPERATIONS: Operation[] = [
  {
    method: "post",
    path: "/api/batches/save",
    summary: "Create a batch in SAVED",
    tag: "batches",
    body: createBatchSchema,
    multipart: multipartCreate,
    ok: { 201: { description: "Created", json: res.batchAnswerSchema } },
    errors: [400, 403, 413, 415],
  },
  {
    method: "post",
    path: "/api/batches/stage",
    summary: "Create a batch and stage it at once (needs at least one document)",
    tag: "batches",
    body: createBatchSchema,
    multipart: multipartCreate,
    ok: { 201: { description: "Created and staging", json: res.batchAnswerSchema } },
    errors: [400, 403, 413, 415],
  },
  {
    method: "get",
    path: "/api/batches",
    summary: "List batches, newest first",
    tag: "batches",
    query: listQuerySchema,
    ok: { 200: { description: "A page of batches and the total", json: res.batchListSchema } },
    errors: [400],
  },
  {
    method: "get",
    path: "/api/batches/:id",
    summary: "One batch",
    tag: "batches",
    ok: { 200: { description: "The batch", json: res.batchAnswerSchema } },
    errors: [404, 409],
  },
  {
    method: "delete",
    path: "/api/batches/:id",
    summary: "Delete a batch (not while STAGING, ANALYZING or PAUSED)",
    tag: "batches",
    ifMatch: true,
    ok: { 200: { description: "Deleted", json: res.deletedAnswerSchema } },
    errors: ACTION_ERRORS,
  },
  {
    method: "post",
    path: "/api/batches/:id/action",
    summary: `Ask the batch for an action (${ACTIONS.join(", ")})`,
    tag: "batches",
    body: actionBodySchema,
    ifMatch: true,
    ok: { 200: { description: "Accepted", json: res.actionAnswerSchema } },
    errors: ACTION_ERRORS,
  },
  ...Object.keys(ACTION_ROUTES).map(
    (path): Operation => ({
      method: "post",
      path: `/api/batches/:id/${path}`,
      summary: actionSummary[path] ?? `The ${ACTION_ROUTES[path]} action`,
      tag: "batches",
      body: namedActionBodySchema,
      ifMatch: true,
      ok: { 200: { description: "Accepted", json: res.actionAnswerSchema } },
      errors: ACTION_ERRORS,
    }),
  ),
  {
    method: "post",
    path: "/api/batches/:id/budget",
    summary: "Set the batch's budget in USD (null: none), in any state; recorded in history",
    tag: "batches",
    body: budgetBodySchema,
    ifMatch: true,
    ok: { 200: { description: "Set", json: res.budgetAnswerSchema } },
    errors: [400, 403, 404, 409, 412],
  },
  {
    method: "get",
    path: "/api/batches/:id/documents",
    summary: "The batch's documents with their staging status",
    tag: "documents",
    ok: { 200: { description: "The documents", json: res.documentListSchema } },
    errors: [404, 409],
  },
  {
    method: "post",
    path: "/api/batches/:id/documents",
    summary: "Add documents while SAVED",
    tag: "documents",
    body: addDocumentsSchema,
    multipart: multipartFiles,
    ifMatch: true,
    ok: { 201: { description: "Added", json: res.documentsAddedSchema } },
    errors: [400, 403, 404, 409, 412, 413, 415],
  },
  {
    method: "delete",
    path: "/api/batches/:id/documents/:documentId",
    summary: "Remove a document while SAVED",
    tag: "documents",
    ifMatch: true,
    ok: { 200: { description: "Removed", json: res.documentRemovedSchema } },
    errors: [403, 404, 409, 412],
  },
  {
    method: "get",
    path: "/api/batches/:id/history",
    summary: "The audit trail: every accepted transition and every refused or ignored request",
    tag: "batches",
    query: historyQuerySchema,
    ok: { 200: { description: "History entries in order", json: res.historySchema } },
    errors: [400, 404, 409],
  },
  {
    method: "get",
    path: "/api/batches/:id/results",
    summary: "The results, streamed, one record per document",
    tag: "batches",
    query: resultsQuerySchema,
    ok: {
      200: {
        description: "`format=json`: one object; `jsonl`: one record per line; `csv`: a header and one row per document",
        json: res.resultsSchema,
        media: {
          "application/x-ndjson": { type: "string", description: "One JSON record per line", contentSchema: jsonSchema(res.resultRecordSchema, "output") },
          "text/csv": { type: "string" },
        },
      },
    },
    errors: [400, 404, 409],
  },
  {
    method: "get",
    path: "/api/events",
    summary: "Server-Sent Events: `event: batch` for every committed change; reconnect with Last-Event-ID",
    tag: "live",
    ok: { 200: { description: "An endless event stream", media: { "text/event-stream": { type: "string" } } } },
    errors: [],
  },
  {
    method: "get",
    path: "/api/queue",
    summary: "The batch queue: running and queued batches in order",
    tag: "queue",
    ok: { 200: { description: "The queue", json: res.queueSchema } },
    errors: [],
  },
  {
    method: "post",
    path: "/api/queue/reorder",
    summary: "Move a queued batch to a position (1 = next)",
    tag: "queue",
    body: reorderSchema,
    ok: { 200: { description: "The queue after the move", json: res.queueSchema } },
    errors: [400, 403, 404, 409, 415],
  },
  {
    method: "get",
    path: "/api/session",
    summary: "Who the key is (any valid key)",
    tag: "access",
    ok: { 200: { description: "The key's name, role and tenant", json: res.sessionSchema } },
    errors: [],
  },
  {
    method: "post",
    path: "/api/session",
    summary: "Sign in: keep the key in a session cookie for the browser",
    tag: "access",
    ok: { 200: { description: "Signed in", json: res.sessionSchema } },
    errors: [403],
  },
  {
    method: "delete",
    path: "/api/session",
    summary: "Sign out: clear the session cookie",
    tag: "access",
    ok: { 200: { description: "Signed out", json: res.signedOutSchema } },
    errors: [403],
  },
  {
    method: "post",
    path: "/api/keys",
    summary: "Create an API key (admins)",
    tag: "access",
    body: createKeySchema,
    ok: { 201: { description: "Created; the secret is in `key`, only here", json: res.keyCreatedSchema } },
    errors: [400, 403, 415],
  },
  {
    method: "get",
    path: "/api/keys",
    summary: "List API keys (admins)",
    tag: "access",
    ok: { 200: { description: "Every key, revoked ones included", json: res.keyListSchema } },
    errors: [403],
  },
  {
    method: "delete",
    path: "/api/keys/:keyId",
    summary: "Revoke an API key (admins)",
    tag: "access",
    ok: { 200: { description: "Revoked", json: res.keyRevokedSchema } },
    errors: [403, 404],
  },
  {
    method: "get",
    path: "/api/health",
    summary: "Liveness of the API",
    tag: "operations",
    ok: { 200: { description: "Up", json: res.healthSchema } },
    errors: [],
  },
  {
    method: "get",
    path: "/api/openapi.json",
    summary: "This document",
    tag: "operations",
    ok: { 200: { description: "OpenAPI 3.1", media: { "application/json": { type: "object" } } } },
    errors: [],
  },
  {
    method: "get",
    path: "/healthz",
    summary: "The process is up",
    tag: "operations",
    ok: { 200: { description: "Up", json: res.healthSchema } },
    errors: [],
  },
  {
    method: "get",
    path: "/readyz",
    summary: "PostgreSQL answers, Redis answers and the migrations are applied",
    tag: "operations",
    ok: { 200: { description: "Ready", json: res.readySchema } },
    errors: [503],
  },
  {
    method: "get",
    path: "/metrics",
    summary: "Prometheus metrics (text exposition format)",
    tag: "operations",
    ok: { 200: { description: "Every tranche_ series", media: { "text/plain": { type: "string" } } } },
    errors: [403],
  },
];

/** `/api/batches/:id` → `/api/batches/{id}`. */
export const openApiPath = (expressPath: string) => expressPath.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

function parameters(op: Operation): JsonSchema[] {
  const params: JsonSchema[] = [];
  for (const [, name] of op.path.matchAll(/:([A-Za-z0-9_]+)/g)) {
    if (name === "keyId") params.push({ name, in: "path", required: true, description: "The key's id", schema: { type: "string", pattern: "^[0-9a-f]{16}$" } });
    else params.push(uuidParam(name as string, name === "id" ? "The batch's id" : "The document's id"));
  }
  for (const [name, field] of Object.entries(op.query?.shape ?? {})) {
    const schema = field as z.ZodType;
    params.push({ name, in: "query", required: !isOptional(schema), schema: jsonSchema(schema, "input") });
  }
  if (op.ifMatch) {
    params.push({ name: "If-Match", in: "header", required: false, description: "Act only on this batch version (like `expected_version`)", schema: { type: "string", pattern: '^(W/)?"?\\d+"?$' } });
  }
  return params;
}

function operationObject(op: Operation): JsonSchema {
  const responses: Record<string, unknown> = {};
  for (const [status, answer] of Object.entries(op.ok)) {
    const content: Record<string, unknown> = {};
    if (answer.json) content["application/json"] = { schema: jsonSchema(answer.json, "output") };
    for (const [type, schema] of Object.entries(answer.media ?? {})) content[type] = { schema };
    responses[status] = { description: answer.description, content };
  }
  // Under /api every route may answer 401 (no valid key) and 429 (rate limited) once API keys are on.
  // Any route can meet oversized headers; any API route a database outage.
  const common = op.path.startsWith("/api/") ? [401, 429, 431, 500, 503] : [431, 500];
  for (const status of [...new Set([...op.errors, ...common])].sort((a, b) => a - b)) responses[String(status)] = { $ref: `#/components/responses/${ERROR_CODES[status]?.name}` };
  const body: Record<string, unknown> = {};
  if (op.body) body["application/json"] = { schema: jsonSchema(op.body, "input") };
  if (op.multipart) body["multipart/form-data"] = { schema: op.multipart };
  return {
    operationId: operationId(op),
    summary: op.summary,
    tags: [op.tag],
    parameters: parameters(op),
    ...(op.body && { requestBody: { required: !isOptional(op.body), content: body } }),
    responses,
  };
}

function operationId(op: Operation): string {
  const words = op.path.replace(/^\/api/, "").split(/[/{}:.-]+/).filter(Boolean);
  return [op.method, ...words].map((w, i) => (i ? w.charAt(0).toUpperCase() + w.slice(1) : w)).join("");
}

function errorResponses(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [status, { name, codes }] of Object.entries(ERROR_CODES)) {
    const schema = status === "503" ? res.notReadySchema : status === "409" || status === "412" ? res.refusalSchema : res.errorSchema;
    const json = jsonSchema(schema, "output");
    const codeList = Object.keys(codes);
    const properties = { ...(json.properties as JsonSchema), code: { type: "string", enum: codeList } };
    out[name] = {
      description: Object.entries(codes).map(([code, when]) => `\`${code}\`: ${when}`).join("; "),
      content: { "application/json": { schema: { ...json, properties } } },
    };
  }
  return out;
}

/** The whole document; `version` is the package's. */
export function buildOpenApiDocument(version: string): JsonSchema {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) {
    const path = openApiPath(op.path);
    paths[path] = { ...paths[path], [op.method]: operationObject(op) };
  }
  return {
    openapi: "3.1.0",
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    info: {
      title: "Tranche",
      version,
      description:
        "A durable batch workflow engine for LLM document analysis. Every error answers `{ success: false, code, error }`; see each status's codes.",
      license: { name: "MIT", identifier: "MIT" },
    },
    servers: [{ url: "/" }],
    tags: [
      { name: "batches", description: "Batches and their lifecycle" },
      { name: "documents", description: "A batch's documents" },
      { name: "queue", description: "The batch queue" },
      { name: "live", description: "The live stream of changes" },
      { name: "access", description: "API keys and the browser's session" },
      { name: "operations", description: "Probes, metrics and this document" },
    ],
    paths,
    // With API keys on (ADMIN_API_KEY set), every /api route needs one; without, none is asked for.
    security: [{ bearer: [] }, { apiKey: [] }, {}],
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "`Authorization: Bearer <key>`" },
        apiKey: { type: "apiKey", in: "header", name: "X-API-Key" },
      },
      responses: errorResponses(),
    },
  };
}
