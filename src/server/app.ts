/**
 * `createApp(deps)` builds the Express app and does not listen, so tests and processes
 * compose it as they need. Every error leaves through one JSON error middleware.
 *
 * Every request is identified first (API key, or the local single user when authentication
 * is off); everything under /api then needs a valid key, reads a viewer and changes an
 * operator, so a route added later is guarded without asking.
 */
import cors from "cors";
import express, { type Express, type RequestHandler, type Router } from "express";
import type { KeyStore } from "../auth/api-keys";
import { createAuth, type Auth } from "../auth/guard";
import { NotFoundError } from "../errors";
import type { Logger } from "../logger";
import { createKeysRouter, createSessionRouter } from "./access-routes";
import { createApiDocsRouter } from "./api-docs";
import { errorHandler } from "./error-handler";
import { inputGuard } from "./input-guard";
import { requestId } from "./request-id";
import { createApiRouter, type RoutesDeps } from "./routes";
import { defaultAllowedHosts, sameOrigin } from "./same-origin";
import { securityHeaders } from "./security-headers";

export interface AppDeps extends RoutesDeps {
  logger: Logger;
  bodyLimit: string;
  /** Further routers under /api (the live stream). */
  apiMounts?: Router[];
  /** Further surfaces mounted beside the API (UI, dashboard, visualizer), path → router (or guard and router). */
  mounts?: Record<string, Router | RequestHandler | RequestHandler[]>;
  /** Host names the server answers to (default: localhost, 127.0.0.1, ::1); `*` for any. */
  allowedHosts?: string[];
  /** Origins besides the server's own whose pages may send state-changing requests. */
  allowedOrigins?: string[];
  /** Who may do what; default: authentication off, every request the local single user. */
  auth?: Auth;
  /** The API keys (`/api/keys`); without it those routes do not exist. */
  keys?: KeyStore;
  /** The shared request limit (see rate-limit.ts); none when absent. */
  rateLimit?: RequestHandler;
  /** Origins allowed to call the API from a browser; none: CORS stays off. */
  corsOrigins?: string[];
  /** /healthz, /readyz and /metrics, at the root (see ops-routes.ts). */
  ops?: Router;
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("json replacer", (_key: string, value: unknown) => (typeof value === "bigint" ? value.toString() : value));
  const auth = deps.auth ?? createAuth({ mode: { kind: "local" } });
  app.use(requestId());
  app.use(securityHeaders());
  // Before the Host and Origin checks: scrapers and orchestrators probe by IP; /metrics has its own guard.
  if (deps.ops) app.use(deps.ops);
  if (deps.corsOrigins?.length) {
    app.use(
      "/api",
      cors({
        origin: deps.corsOrigins,
        allowedHeaders: ["Authorization", "X-API-Key", "Content-Type", "If-Match", "Last-Event-ID"],
        exposedHeaders: ["Retry-After", "RateLimit", "RateLimit-Policy"],
        maxAge: 600,
      }),
    );
  }
  app.use(sameOrigin({ allowedHosts: deps.allowedHosts ?? defaultAllowedHosts("127.0.0.1"), allowedOrigins: deps.allowedOrigins ?? [] }));
  app.use(auth.identify);
  if (deps.rateLimit) app.use("/api", deps.rateLimit);
  app.use("/api", auth.requireKey);
  app.use(express.json({ limit: deps.bodyLimit }));
  app.use("/api", inputGuard());
  app.use("/api", createSessionRouter(auth));
  app.use("/api", auth.requireRoleForMethod);
  if (deps.keys) app.use("/api", createKeysRouter(auth, deps.keys));
  app.use("/api", createApiDocsRouter());
  app.use("/api", createApiRouter(deps));
  for (const router of deps.apiMounts ?? []) app.use("/api", router);
  app.use("/api", (req, _res, next) => next(new NotFoundError("Route", `${req.method} ${req.originalUrl}`)));
  for (const [path, handler] of Object.entries(deps.mounts ?? {})) app.use(path, ...[handler].flat());
  app.use(errorHandler(deps.logger));
  return app;
}

/** A worker process's own small server: only the operator's endpoints (on METRICS_PORT). */
export function createOpsApp(ops: Router, logger: Logger): Express {
  const app = express();
  app.disable("x-powered-by");
  app.use(requestId());
  app.use(ops);
  app.use((req, _res, next) => next(new NotFoundError("Route", `${req.method} ${req.originalUrl}`)));
  app.use(errorHandler(logger));
  return app;
}
