/** The REST API under /api (the README's API section). Handlers parse, call the batch service or queries, and answer JSON. */
import { Router, type Request, type Response } from "express";
import { z } from "zod";
import { principalOf } from "../auth/guard";
import { actorOf, tenantScope, type Principal } from "../auth/roles";
import type { BatchService } from "../batch-service";
import type { BatchQueries } from "../batch-queries";
import type { Config } from "../config";
import { NotFoundError, UnauthorizedError, ValidationError } from "../errors";
import type { UploadSpool } from "../uploads/upload-spool";
import type { Action } from "../machines/batch.events";
import { receiveArchive, isArchiveRequest } from "./archive-upload";
import { checkFiles, fromFiles, fromJson } from "./documents";
import {
  actionBodySchema,
  addDocumentsSchema,
  budgetBodySchema,
  createBatchSchema,
  historyQuerySchema,
  listQuerySchema,
  namedActionBodySchema,
  reorderSchema,
  documentsQuerySchema,
  resultsQuerySchema,
} from "./http-schemas";
import { parseBytes, readMultipart, type MultipartBody } from "./multipart";
import { streamResults } from "./results";

export interface RoutesDeps {
  service: BatchService;
  queries: BatchQueries;
  /** Which job queues are paused in Redis (for the health answer); absent where no queues run. */
  pausedQueues?: () => Promise<string[]>;
  uploads: UploadSpool;
  config: Pick<
    Config,
    | "MAX_RUNNING_BATCHES"
    | "DISPATCH_WINDOW"
    | "LANE_WINDOW"
    | "STAGING_TOLERANCE"
    | "FAILURE_TOLERANCE"
    | "MAX_DOCUMENT_BYTES"
    | "UPLOAD_LIMIT"
    | "MAX_FILES_PER_REQUEST"
    | "MAX_ARCHIVE_DOCUMENTS"
    | "MAX_ARCHIVE_BYTES"
  >;
  /** Whether Redis answers now; health reports it when given. */
  redisReady?: () => boolean;
}

/** The per-action routes and the action each stands for. */
export const ACTION_ROUTES: Record<string, Action> = {
  stage: "stage",
  run: "run",
  pause: "pause",
  resume: "resume",
  cancel: "cancel",
  "retry-failed": "retry-failed",
  rerun: "rerun",
  "reprocess-staging": "restage",
  "reset-to-prestage": "reset",
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Parses with a zod schema, answering 400 with every problem and the field it is in. */
export function parse<T extends z.ZodType>(schema: T, value: unknown, where = "body"): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${[where, ...i.path].join(".")}: ${i.message}`);
  throw new ValidationError(problems.join("; "), { problems });
}

/** `If-Match: 7` (or `"7"`, `W/"7"`) or `expected_version` in the body; both must agree when both are given. */
function expectedVersion(req: Request, fromBody: number | undefined): number | undefined {
  const header = req.get("if-match");
  if (header === undefined) return fromBody;
  const m = /^(?:W\/)?"?(\d{1,9})"?$/.exec(header.trim());
  if (!m) throw new ValidationError(`If-Match: expected a batch version number, got "${header}"`);
  const v = Number(m[1]);
  if (fromBody !== undefined && fromBody !== v) throw new ValidationError("If-Match and expected_version disagree");
  return v;
}

const id = (req: Request): string => req.params.id as string;

/** The caller; the app's guards ran before any route, so there always is one. */
function caller(res: Response): Principal {
  const p = principalOf(res);
  if (!p) throw new UnauthorizedError();
  return p;
}

/** The paused queues, or undefined when Redis does not answer quickly (health must not hang on it). */
async function pausedWithin(pausedQueues: () => Promise<string[]>, ms: number): Promise<string[] | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([pausedQueues().catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function createApiRouter({ service, queries, uploads, config, redisReady, pausedQueues }: RoutesDeps): Router {
  const router = Router();
  const uploadLimit = parseBytes(config.UPLOAD_LIMIT);
  const archiveLimits = { documents: config.MAX_ARCHIVE_DOCUMENTS, documentBytes: config.MAX_DOCUMENT_BYTES, totalBytes: parseBytes(config.MAX_ARCHIVE_BYTES) };
  const multipartOf = (req: Request, res: Response): Promise<MultipartBody> =>
    readMultipart(req, res, { totalBytes: uploadLimit, fileBytes: config.MAX_DOCUMENT_BYTES, files: config.MAX_FILES_PER_REQUEST });

  /** A batch of another tenant is answered as if it did not exist. */
  async function assertVisible(res: Response, batchId: string): Promise<void> {
    const scope = tenantScope(caller(res));
    if (scope !== undefined && (await queries.tenantOf(batchId)) !== scope) throw new NotFoundError("Batch", batchId);
  }

  router.param("id", async (_req, res, next, value: string) => {
    if (!UUID.test(value)) return next(new NotFoundError("Batch", value));
    await assertVisible(res, value);
    next();
  });

  async function readCreateBody(req: Request, res: Response) {
    if (!req.is("multipart/form-data")) {
      const body = parse(createBatchSchema, req.body ?? {});
      const documents = fromJson(body.documents, config.MAX_DOCUMENT_BYTES);
      return { body, documents, count: documents.length };
    }
    const { fields, files } = await multipartOf(req, res);
    let analysis: unknown = fields.instructions !== undefined ? { instructions: fields.instructions } : undefined;
    if (fields.analysis !== undefined) {
      try {
        analysis = JSON.parse(fields.analysis);
      } catch {
        throw new ValidationError("body.analysis: not valid JSON");
      }
    }
    const body = parse(createBatchSchema, {
      name: fields.name,
      analysis,
      priority: fields.priority !== undefined ? Number(fields.priority) : undefined,
    });
    checkFiles(files);
    // Files go through the spool, one in memory at a time, and land with the batch in one statement.
    return { body, documents: files.length ? await uploads.stage(fromFiles(files)) : [], count: files.length };
  }

  async function create(req: Request, res: Response, stage: boolean) {
    const { body, documents, count } = await readCreateBody(req, res);
    const who = caller(res);
    if (stage && count === 0) throw new ValidationError("body.documents: a batch needs at least one document to be staged");
    let batchId: string;
    try {
      batchId = await service.createBatch({
        name: body.name,
        analysis: body.analysis,
        priority: body.priority,
        window: config.DISPATCH_WINDOW,
        ...(body.analysis.mode === "batch" && { analysisWindow: config.LANE_WINDOW }),
        stagingTolerance: body.analysis.staging_tolerance ?? config.STAGING_TOLERANCE,
        failureTolerance: body.analysis.failure_tolerance ?? config.FAILURE_TOLERANCE,
        ...(body.analysis.budget_usd !== undefined && { budgetUsd: body.analysis.budget_usd }),
        documents,
        tenant: who.tenant,
        actor: actorOf(who),
      });
    } finally {
      if (!Array.isArray(documents)) await uploads.discard(documents.uploadId);
    }
    if (stage) await service.requestStateChange(batchId, "stage", { reason: "created with /batches/stage", actor: actorOf(who) });
    res.status(201).json({ success: true, batch: await queries.getBatch(batchId) });
  }

  async function act(req: Request, res: Response, action: Action, ctx: { reason?: string; position?: number; expected?: number; extra?: Record<string, unknown> }) {
    const batchId = id(req);
    const change = await service.requestStateChange(batchId, action, {
      reason: ctx.reason,
      position: ctx.position,
      expectedVersion: expectedVersion(req, ctx.expected),
      extra: ctx.extra,
      actor: actorOf(caller(res)),
    });
    if (action === "delete") {
      res.json({ success: true, previous_state: change.previousState.split(".")[0], current_state: "DELETED", id: batchId });
      return;
    }
    // The answer names what this change left; `batch` is the batch as it stands now (later changes included).
    const batch = await queries.getBatch(batchId);
    res.json({
      success: true,
      previous_state: change.previousState.split(".")[0],
      current_state: change.currentState.split(".")[0],
      allowed_actions: change.allowedActions,
      version: change.version,
      batch,
    });
  }

  router.post("/batches/save", (req, res) => create(req, res, false));
  router.post("/batches/stage", (req, res) => create(req, res, true));

  router.get("/batches", async (req, res) => {
    const q = parse(listQuerySchema, req.query, "query");
    res.json({ success: true, ...(await queries.listBatches({ status: q.status, limit: q.limit, offset: q.offset, tenant: tenantScope(caller(res)) })) });
  });

  router.get("/batches/:id", async (req, res) => {
    res.json({ success: true, batch: await queries.getBatch(id(req)) });
  });

  router.delete("/batches/:id", (req, res) => act(req, res, "delete", {}));

  router.post("/batches/:id/action", async (req, res) => {
    const body = parse(actionBodySchema, req.body ?? {});
    const { reason, position, ...extra } = body.context;
    await act(req, res, body.action, { reason, position, expected: body.expected_version, extra: Object.keys(extra).length ? extra : undefined });
  });

  for (const [path, action] of Object.entries(ACTION_ROUTES)) {
    router.post(`/batches/:id/${path}`, async (req, res) => {
      const body = parse(namedActionBodySchema, req.body ?? {});
      const { reason, position, ...extra } = body.context;
      await act(req, res, action, {
        reason: body.reason ?? reason,
        position: body.position ?? position,
        expected: body.expected_version,
        extra: Object.keys(extra).length ? extra : undefined,
      });
    });
  }

  router.post("/batches/:id/budget", async (req, res) => {
    const body = parse(budgetBodySchema, req.body ?? {});
    const change = await service.setBudget(id(req), body.budget_usd, { expectedVersion: expectedVersion(req, body.expected_version), actor: actorOf(caller(res)) });
    res.json({ success: true, version: change.version, batch: await queries.getBatch(id(req)) });
  });

  router.get("/batches/:id/documents", async (req, res) => {
    const q = parse(documentsQuerySchema, req.query, "query");
    res.json({ success: true, ...(await queries.getDocuments(id(req), { afterPosition: q.after_position, limit: q.limit })) });
  });

  router.post("/batches/:id/documents", async (req, res) => {
    let documents;
    let expected: number | undefined;
    if (isArchiveRequest(req)) {
      documents = await receiveArchive(req, res, { uploadLimit, archive: archiveLimits, spool: uploads });
    } else if (req.is("multipart/form-data")) {
      const { files } = await multipartOf(req, res);
      if (!files.length) throw new ValidationError("files: upload at least one document");
      checkFiles(files);
      documents = await uploads.stage(fromFiles(files));
    } else {
      const body = parse(addDocumentsSchema, req.body ?? {});
      documents = fromJson(body.documents, config.MAX_DOCUMENT_BYTES);
      expected = body.expected_version;
    }
    let change;
    try {
      change = await service.addDocuments(id(req), documents, { expectedVersion: expectedVersion(req, expected), actor: actorOf(caller(res)) });
    } finally {
      // A refused add leaves its spooled rows behind; an accepted one has already moved them.
      if (!Array.isArray(documents)) await uploads.discard(documents.uploadId);
    }
    const ids = change.documentIds;
    res.status(201).json({
      success: true,
      version: change.version,
      added: ids.length,
      // An archive may add 100,000 documents: their ids are read back by paging the documents list.
      ...(ids.length <= config.MAX_FILES_PER_REQUEST ? { document_ids: ids } : {}),
      batch: await queries.getBatch(id(req)),
    });
  });

  router.delete("/batches/:id/documents/:documentId", async (req, res) => {
    const documentId = req.params.documentId as string;
    if (!UUID.test(documentId)) throw new NotFoundError("Document", documentId);
    const change = await service.removeDocuments(id(req), [documentId], { expectedVersion: expectedVersion(req, undefined), actor: actorOf(caller(res)) });
    res.json({ success: true, version: change.version, batch: await queries.getBatch(id(req)) });
  });

  router.get("/batches/:id/history", async (req, res) => {
    const q = parse(historyQuerySchema, req.query, "query");
    res.json({ success: true, history: await queries.getHistory(id(req), { afterSeq: q.after_seq, beforeSeq: q.before_seq, limit: q.limit }) });
  });

  router.get("/batches/:id/results", async (req, res) => {
    const { format, after_position: afterPosition, limit } = parse(resultsQuerySchema, req.query, "query");
    if (limit !== undefined) {
      if (format !== "json") throw new ValidationError("query.limit: pages are JSON only; the jsonl and csv exports stream every result");
      res.json({ success: true, batch_id: id(req), ...(await queries.getResults(id(req), { afterPosition, limit })) });
      return;
    }
    await streamResults(res, id(req), format, queries.iterateResults(id(req)));
  });

  router.get("/queue", async (_req, res) => {
    res.json({ success: true, ...(await queries.getQueue(config.MAX_RUNNING_BATCHES, tenantScope(caller(res)))) });
  });

  router.post("/queue/reorder", async (req, res) => {
    const body = parse(reorderSchema, req.body ?? {});
    await assertVisible(res, body.batch_id);
    await service.reorderQueue(body.batch_id, body.position);
    res.json({ success: true, ...(await queries.getQueue(config.MAX_RUNNING_BATCHES, tenantScope(caller(res)))) });
  });

  // Honest: 503 `unavailable` when PostgreSQL does not answer (every batch route would fail);
  // "degraded" when only Redis is away (actions are still accepted, work waits in the outbox)
  // or a job queue is paused in Redis (its jobs wait until it is resumed).
  router.get("/health", async (_req, res) => {
    await queries.ping();
    const redis = redisReady ? (redisReady() ? "ok" : "missing") : undefined;
    const paused = pausedQueues && redis !== "missing" ? await pausedWithin(pausedQueues, 500) : [];
    const warnings = (paused ?? []).map((q) => `queue ${q} is paused in Redis: its jobs wait until it is resumed (/admin/queues)`);
    const degraded = redis === "missing" || warnings.length > 0;
    res.json({ success: true, status: degraded ? "degraded" : "ok", database: "ok", ...(redis ? { redis } : {}), paused_queues: paused ?? null, warnings });
  });

  return router;
}
