/**
 * The operator's endpoints, served by every process (the API on its port, a worker on
 * METRICS_PORT): `GET /healthz` (the process is up), `GET /readyz` (PostgreSQL, Redis and
 * the migrations; 503 naming what is not ready) and `GET /metrics` (Prometheus text).
 */
import { Router, type RequestHandler } from "express";
import { NotReadyError } from "../errors";
import { METRICS_CONTENT_TYPE, type Metrics } from "../metrics";
import type { ReadinessProbe } from "../readiness";

export interface OpsRoutesDeps {
  metrics: Metrics;
  readiness: ReadinessProbe;
  /**
   * Who may read /metrics: authentication's `[auth.identify, auth.loopbackOrRole("admin")]`
   * (loopback, or an admin key, once keys are on). None: everyone.
   */
  metricsGuard?: RequestHandler[];
}

export function createOpsRouter({ metrics, readiness, metricsGuard = [] }: OpsRoutesDeps): Router {
  const router = Router();

  router.get("/healthz", (_req, res) => {
    res.json({ success: true, status: "ok" });
  });

  router.get("/readyz", async (_req, res) => {
    const { ready, checks } = await readiness.check();
    if (ready) {
      res.json({ success: true, status: "ready", checks });
      return;
    }
    const failing = Object.entries(checks).filter(([, c]) => !c.ok);
    const not_ready = failing.map(([name]) => name);
    const message = `Not ready: ${failing.map(([name, c]) => `${name} (${c.error ?? "failed"})`).join(", ")}`;
    throw new NotReadyError(message, { status: "not_ready", not_ready, checks });
  });

  router.get("/metrics", ...metricsGuard, async (_req, res) => {
    res.set("content-type", METRICS_CONTENT_TYPE).send(await metrics.render());
  });

  return router;
}
