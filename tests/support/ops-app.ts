/** The HTTP app of a test system as `npm run api` builds it (less the UI pages): the API, keys, the live stream and the operator's endpoints. */
import type { Express } from "express";
import { createKeyStore } from "../../src/auth/api-keys";
import { createAuth } from "../../src/auth/guard";
import { createMetrics, type Metrics } from "../../src/metrics";
import { createReadiness } from "../../src/readiness";
import { createApp } from "../../src/server/app";
import { createLiveStream } from "../../src/server/live";
import { createOpsRouter } from "../../src/server/ops-routes";
import { testConfig, testLogger } from "./harness";
import { createSystem, type SystemOptions, type TestSystem } from "./system";

export interface OpsSystem extends TestSystem {
  metrics: Metrics;
  /** The API with /metrics, /healthz, /readyz and /api/events. */
  opsApp: Express;
}

export async function createOpsSystem(options: SystemOptions & { config?: Partial<typeof testConfig> } = {}): Promise<OpsSystem> {
  const metrics = createMetrics();
  const s = await createSystem({ ...options, metrics });
  const live = await createLiveStream({ databaseUrl: s.db.url, prisma: s.db.prisma, logger: testLogger, heartbeatMs: 1000 });
  const readiness = createReadiness({ prisma: s.db.prisma, redis: s.background.connection, timeoutMs: 1000 });
  const opsApp = createApp({
    ...s.engine,
    logger: testLogger,
    bodyLimit: "10mb",
    config: { ...testConfig, MAX_RUNNING_BATCHES: options.maxRunningBatches ?? 1, ...options.config },
    ops: createOpsRouter({ metrics, readiness }),
    auth: createAuth({ mode: { kind: "local" } }),
    keys: createKeyStore({ prisma: s.db.prisma }),
    apiMounts: [live.router],
  });
  return {
    ...s,
    metrics,
    opsApp,
    async close() {
      await live.close();
      await s.close();
    },
  };
}
