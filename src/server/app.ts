/**
 * `createApp(deps)` builds the Express app and does not listen, so tests and processes
 * compose it as they need. Every error leaves through one JSON error middleware.
 */
import express, { type Express, type Router } from "express";
import { NotFoundError } from "../errors";
import type { Logger } from "../logger";
import { errorHandler } from "./error-handler";
import { inputGuard } from "./input-guard";
import { requestId } from "./request-id";
import { createApiRouter, type RoutesDeps } from "./routes";
import { defaultAllowedHosts, sameOrigin } from "./same-origin";

export interface AppDeps extends RoutesDeps {
  logger: Logger;
  bodyLimit: string;
  /** Further routers under /api (the live stream). */
  apiMounts?: Router[];
  /** Further surfaces mounted beside the API (UI, dashboard, visualizer), path → router. */
  mounts?: Record<string, Router | express.Handler>;
  /** Host names the server answers to (default: localhost, 127.0.0.1, ::1); `*` for any. */
  allowedHosts?: string[];
  /** Origins besides the server's own whose pages may send state-changing requests. */
  allowedOrigins?: string[];
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("json replacer", (_key: string, value: unknown) => (typeof value === "bigint" ? value.toString() : value));
  app.use(requestId());
  app.use(sameOrigin({ allowedHosts: deps.allowedHosts ?? defaultAllowedHosts("127.0.0.1"), allowedOrigins: deps.allowedOrigins ?? [] }));
  app.use(express.json({ limit: deps.bodyLimit }));
  app.use("/api", inputGuard());
  app.use("/api", createApiRouter(deps));
  for (const router of deps.apiMounts ?? []) app.use("/api", router);
  app.use("/api", (req, _res, next) => next(new NotFoundError("Route", `${req.method} ${req.originalUrl}`)));
  for (const [path, handler] of Object.entries(deps.mounts ?? {})) app.use(path, handler);
  app.use(errorHandler(deps.logger));
  return app;
}
