/**
 * `createApp(deps)` builds the Express app and does not listen, so tests and processes
 * compose it as they need. Every error leaves through one JSON error middleware.
 */
import express, { type ErrorRequestHandler, type Express, type Router } from "express";
import { AppError, NotFoundError } from "../errors";
import type { Logger } from "../logger";
import { createApiRouter, type RoutesDeps } from "./routes";

export interface AppDeps extends RoutesDeps {
  logger: Logger;
  bodyLimit: string;
  /** Further routers under /api (the live stream). */
  apiMounts?: Router[];
  /** Further surfaces mounted beside the API (UI, dashboard, visualizer), path → router. */
  mounts?: Record<string, Router | express.Handler>;
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("json replacer", (_key: string, value: unknown) => (typeof value === "bigint" ? value.toString() : value));
  app.use(express.json({ limit: deps.bodyLimit }));
  app.use("/api", createApiRouter(deps));
  for (const router of deps.apiMounts ?? []) app.use("/api", router);
  app.use("/api", (req, _res, next) => next(new NotFoundError("Route", `${req.method} ${req.originalUrl}`)));
  for (const [path, handler] of Object.entries(deps.mounts ?? {})) app.use(path, handler);
  app.use(errorHandler(deps.logger));
  return app;
}

interface BodyParserError {
  type?: string;
  status?: number;
  limit?: number;
  message?: string;
}

function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    if (err instanceof AppError) {
      res.status(err.status).json({ success: false, error: err.message, code: err.code, ...err.details });
      return;
    }
    const e = err as BodyParserError & { code?: string; field?: string };
    if (e?.type === "entity.too.large") {
      res.status(413).json({ success: false, code: "payload_too_large", error: `Request body is larger than the limit of ${e.limit} bytes` });
      return;
    }
    if (e?.type === "entity.parse.failed") {
      res.status(400).json({ success: false, code: "malformed_json", error: `Request body is not valid JSON: ${e.message}` });
      return;
    }
    if (e?.code === "LIMIT_FILE_SIZE") {
      res.status(413).json({ success: false, code: "payload_too_large", error: `Uploaded file ${e.field ?? ""} is larger than the limit` });
      return;
    }
    if (typeof e?.code === "string" && e.code.startsWith("LIMIT_")) {
      res.status(400).json({ success: false, code: "validation_failed", error: `Upload refused: ${e.message}` });
      return;
    }
    logger.error({ err, method: req.method, url: req.originalUrl }, "unhandled error");
    res.status(500).json({ success: false, code: "internal_error", error: "Internal server error" });
  };
}
