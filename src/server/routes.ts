/** The REST API of SPEC §4 under /api. Handlers parse, call the batch service or queries, and answer JSON. */
import { Router, type Request, type Response } from "express";
import multer from "multer";
import { z } from "zod";
import { principalOf } from "../auth/guard";
import { actorOf, tenantScope, type Principal } from "../auth/roles";
import type { BatchService } from "../batch-service";
import type { BatchQueries } from "../batch-queries";
import type { Config } from "../config";
import { BadRequestError, NotFoundError, UnauthorizedError, ValidationError } from "../errors";
import type { Action } from "../machines/batch.events";
import { fromFiles, fromJson, type UploadedFile } from "./documents";
import { checkRequest } from "./input-guard";
import {
  actionBodySchema,
  addDocumentsSchema,
  createBatchSchema,
  historyQuerySchema,
  listQuerySchema,
  namedActionBodySchema,
  reorderSchema,
  resultsQuerySchema,
} from "./http-schemas";
import { streamResults } from "./results";

export interface RoutesDeps {
  service: BatchService;
  queries: BatchQueries;
  config: Pick<Config, "MAX_RUNNING_BATCHES" | "DISPATCH_WINDOW" | "STAGING_TOLERANCE" | "FAILURE_TOLERANCE" | "MAX_DOCUMENT_BYTES">;
}

/** The per-action routes of the seeds and the action each stands for. */
const ACTION_ROUTES: Record<string, Action> = {
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

export function createApiRouter({ service, queries, config }: RoutesDeps): Router {
  const router = Router();
  const upload = multer({
    storage: multer.memoryStorage(),
    limits: { fileSize: config.MAX_DOCUMENT_BYTES, files: 10_000, fieldSize: 10 * 1024 * 1024 },
  });
  // A form that busboy cannot read (no boundary, cut short, bad part headers) is the client's
  // fault: multer's own errors carry a LIMIT_* code, everything else is a malformed form.
  const multipart = (req: Request, res: Response, next: (err?: unknown) => void) => {
    if (!req.is("multipart/form-data")) return next();
    upload.any()(req, res, (err?: unknown) => {
      if (err instanceof multer.MulterError || (err as { status?: number } | undefined)?.status === 413) return next(err);
      if (err) return next(new BadRequestError("malformed_multipart", `The multipart form cannot be read: ${err instanceof Error ? err.message : String(err)}`));
      try {
        checkRequest(req);
      } catch (e) {
        return next(e);
      }
      next();
    });
  };

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

  function readCreateBody(req: Request) {
    if (!req.is("multipart/form-data")) {
      const body = parse(createBatchSchema, req.body ?? {});
      return { body, documents: fromJson(body.documents, config.MAX_DOCUMENT_BYTES) };
    }
    const fields = (req.body ?? {}) as Record<string, string>;
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
    return { body, documents: fromFiles((req.files ?? []) as UploadedFile[]) };
  }

  async function create(req: Request, res: Response, stage: boolean) {
    const { body, documents } = readCreateBody(req);
    const who = caller(res);
    if (stage && documents.length === 0) throw new ValidationError("body.documents: a batch needs at least one document to be staged");
    const batchId = await service.createBatch({
      name: body.name,
      analysis: body.analysis,
      priority: body.priority,
      window: config.DISPATCH_WINDOW,
      stagingTolerance: body.analysis.staging_tolerance ?? config.STAGING_TOLERANCE,
      failureTolerance: body.analysis.failure_tolerance ?? config.FAILURE_TOLERANCE,
      documents,
      tenant: who.tenant,
      actor: actorOf(who),
    });
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

  router.post("/batches/save", multipart, (req, res) => create(req, res, false));
  router.post("/batches/stage", multipart, (req, res) => create(req, res, true));

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

  router.get("/batches/:id/documents", async (req, res) => {
    res.json({ success: true, documents: await queries.getDocuments(id(req)) });
  });

  router.post("/batches/:id/documents", multipart, async (req, res) => {
    let documents;
    let expected: number | undefined;
    if (req.is("multipart/form-data")) {
      documents = fromFiles((req.files ?? []) as UploadedFile[]);
      if (!documents.length) throw new ValidationError("files: upload at least one document");
    } else {
      const body = parse(addDocumentsSchema, req.body ?? {});
      documents = fromJson(body.documents, config.MAX_DOCUMENT_BYTES);
      expected = body.expected_version;
    }
    const change = await service.addDocuments(id(req), documents, { expectedVersion: expectedVersion(req, expected), actor: actorOf(caller(res)) });
    res.status(201).json({ success: true, version: change.version, document_ids: change.documentIds, batch: await queries.getBatch(id(req)) });
  });

  router.delete("/batches/:id/documents/:documentId", async (req, res) => {
    const documentId = req.params.documentId as string;
    if (!UUID.test(documentId)) throw new NotFoundError("Document", documentId);
    const change = await service.removeDocuments(id(req), [documentId], { expectedVersion: expectedVersion(req, undefined), actor: actorOf(caller(res)) });
    res.json({ success: true, version: change.version, batch: await queries.getBatch(id(req)) });
  });

  router.get("/batches/:id/history", async (req, res) => {
    const q = parse(historyQuerySchema, req.query, "query");
    res.json({ success: true, history: await queries.getHistory(id(req), { afterSeq: q.after_seq, limit: q.limit }) });
  });

  router.get("/batches/:id/results", async (req, res) => {
    const { format } = parse(resultsQuerySchema, req.query, "query");
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

  router.get("/health", (_req, res) => {
    res.json({ success: true, status: "ok" });
  });

  return router;
}
