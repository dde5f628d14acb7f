/**
 * Tranche's whole HTTP surface as `npm start` and `npm run api` serve it: the API with its
 * guards and limits, the live stream, the queue dashboard (admins only), the machine
 * visualizer and the web UI. Tests build the same app through this function, so what they
 * check is what runs.
 */
import type { Queue } from "bullmq";
import type { Router } from "express";
import type { Redis } from "ioredis";
import type { KeyStore } from "../auth/api-keys";
import type { Auth } from "../auth/guard";
import type { Config } from "../config";
import type { Engine } from "../engine";
import type { Logger } from "../logger";
import { createApp } from "./app";
import { lazyRouter } from "./lazy-router";
import { createMachineRouter } from "./machine-view";
import { createRateLimit } from "./rate-limit";
import type { RoutesDeps } from "./routes";
import { createUiRouter, UI_DIST } from "./ui";

export interface TrancheAppDeps {
  engine: Engine;
  config: RoutesDeps["config"] & Pick<Config, "BODY_LIMIT" | "QUEUE_PREFIX" | "RATE_LIMIT_PER_MINUTE" | "CORS_ORIGINS">;
  logger: Logger;
  auth: Auth;
  keys: KeyStore;
  /** The live stream's router (`/api/events`). */
  live: { router: Router };
  /** The queues the dashboard shows. */
  queues: Queue[];
  /** Where the request limit is counted; without it there is none. */
  redis?: Redis;
  distDir?: string;
  /** Host names the server answers to (see same-origin.ts). */
  allowedHosts?: string[];
  /** /healthz, /readyz and /metrics (see ops-routes.ts). */
  ops?: Router;
  /** Whether Redis answers now, for health. */
  redisReady?: () => boolean;
  /** Which job queues are paused in Redis, for the health answer. */
  pausedQueues?: RoutesDeps["pausedQueues"];
}

export function createTrancheApp(deps: TrancheAppDeps) {
  const { engine, config, auth } = deps;
  const distDir = deps.distDir ?? UI_DIST;
  return createApp({
    ...engine,
    config,
    logger: deps.logger,
    bodyLimit: config.BODY_LIMIT,
    auth,
    keys: deps.keys,
    // The local single user on loopback is no abuser: the limit is for keys and exposed servers.
    rateLimit:
      deps.redis && auth.mode.kind !== "local" && config.RATE_LIMIT_PER_MINUTE > 0
        ? createRateLimit({ redis: deps.redis, prefix: config.QUEUE_PREFIX, perMinute: config.RATE_LIMIT_PER_MINUTE })
        : undefined,
    corsOrigins: config.CORS_ORIGINS,
    allowedHosts: deps.allowedHosts,
    redisReady: deps.redisReady,
    pausedQueues: deps.pausedQueues,
    // A page of a CORS origin may change state too: that is what naming it allows.
    allowedOrigins: config.CORS_ORIGINS,
    ops: deps.ops,
    apiMounts: [deps.live.router],
    mounts: {
      "/admin/queues": [auth.requireRole("admin"), lazyRouter(async () => (await import("./dashboard")).createDashboardRouter(deps.queues))],
      "/machine": createMachineRouter({
        getBatch: (id) => engine.queries.getBatch(id),
        getPath: (id) => engine.queries.getPath(id),
        distDir,
      }),
      // Last: its index.html fallback for client routes would hide anything mounted after it.
      "/": createUiRouter({ distDir }),
    },
  });
}
