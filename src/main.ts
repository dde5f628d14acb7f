/**
 * Tranche's processes. `npm start` runs everything in one process (API, workers, effects
 * relay, reconciler); `npm run api` and `npm run worker` run the two halves apart, and any
 * number of each may run against the same PostgreSQL and Redis.
 *
 * The database is created and migrated at start when missing. SIGINT/SIGTERM: stop
 * accepting requests and jobs, let running jobs finish, flush the outbox, close connections.
 */
import type { Server } from "node:http";
import type { Express } from "express";
import { Redis } from "ioredis";
import { createKeyStore } from "./auth/api-keys";
import { createAuth } from "./auth/guard";
import { resolveAuthMode } from "./auth/mode";
import { batchFingerprint } from "./cache/fingerprint";
import { ConfigError, loadConfig } from "./config";
import { createPrisma, ensureDatabase, migrate } from "./db";
import { createPricingResolver, loadPriceTable } from "./pricing";
import { createEngine } from "./engine";
import { createLogger, wantsPrettyLogs } from "./logger";
import { createMetrics } from "./metrics";
import { createReadiness } from "./readiness";
import { createOpsApp } from "./server/app";
import { answerClientErrors } from "./server/client-errors";
import { createLiveStream } from "./server/live";
import { createOpsRouter } from "./server/ops-routes";
import { defaultAllowedHosts } from "./server/same-origin";
import { createTrancheApp } from "./server/tranche-app";
import { ensureUiBuilt, UI_DIST } from "./server/ui";
import { startBackground } from "./workers";

type Role = "all" | "api" | "worker";

async function main(role: Role) {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL, { pretty: wantsPrettyLogs(config.NODE_ENV) }).child({ role });
  // Before anything else: an exposed HOST without keys must not even start.
  const mode = role === "worker" ? { kind: "local" as const } : resolveAuthMode(config);
  if (mode.kind === "off") {
    logger.warn({ host: config.HOST }, mode.warning);
    process.stderr.write(`\n${"!".repeat(78)}\n!! WARNING: ${mode.warning}\n${"!".repeat(78)}\n\n`);
  }
  const database = new URL(config.DATABASE_URL).pathname.slice(1);
  if (await ensureDatabase(config.DATABASE_URL)) logger.info({ database }, "created database");
  const applied = await migrate(config.DATABASE_URL);
  if (applied.length) logger.info({ database, applied }, "applied migrations");

  const prisma = createPrisma(config.DATABASE_URL, config.DATABASE_POOL_SIZE);
  // Every process prices estimates and budgets (any may apply a group), so every one reads the table.
  const pricing = createPricingResolver(config, loadPriceTable(config.LLM_PRICES_FILE));
  const engine = createEngine({
    pricing,
    prisma,
    databaseUrl: config.DATABASE_URL,
    poolSize: config.DATABASE_POOL_SIZE,
    logger,
    maxRunningBatches: config.MAX_RUNNING_BATCHES,
    maxRunningBatchesPerTenant: config.MAX_RUNNING_BATCHES_PER_TENANT,
    inbox: { coalesceMs: config.INBOX_COALESCE_MS, groupSize: config.INBOX_GROUP_SIZE },
    fingerprint: (analysis) => batchFingerprint(analysis, config),
  });
  const metrics = createMetrics();
  const background = await startBackground({ prisma, engine, config, logger, runWorkers: role !== "api", metrics });
  const readiness = createReadiness({ prisma, redis: background.connection });
  const closers: (() => Promise<void>)[] = [];
  const listen = (app: Express, port: number): Promise<Server> =>
    new Promise((resolve, reject) => {
      const s = app.listen(port, config.HOST, () => resolve(s));
      s.once("error", reject);
    });

  if (role !== "worker") {
    // What interrupted uploads left in the spool; any API process may sweep, deleting is idempotent.
    const sweepUploads = () =>
      void engine.uploads.sweep().then(
        (n) => n && logger.info({ rows: n }, "swept interrupted uploads"),
        (err: unknown) => logger.warn({ err }, "sweeping interrupted uploads failed"),
      );
    sweepUploads();
    const sweeper = setInterval(sweepUploads, 60 * 60 * 1000).unref();
    closers.push(async () => clearInterval(sweeper));
    const live = await createLiveStream({ databaseUrl: config.DATABASE_URL, prisma, logger });
    await ensureUiBuilt(UI_DIST, logger);
    const keys = createKeyStore({ prisma });
    const stopListening = await keys.listen(config.DATABASE_URL, logger);
    // While Redis is away a count fails within a second (the limit then lets requests through)
    // instead of holding every request until Redis returns; commands sent before it first
    // connects still wait for it, so the limit's script is loaded at start.
    const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1, commandTimeout: 1000 });
    redis.on("error", (err) => logger.debug({ err }, "Redis connection error (rate limit)"));
    const auth = createAuth({ mode, keys });
    const ops = createOpsRouter({ metrics, readiness, metricsGuard: [auth.identify, auth.loopbackOrRole("admin")] });
    const app = createTrancheApp({
      engine,
      config,
      logger,
      auth,
      keys,
      live,
      queues: background.queues.all,
      redis,
      allowedHosts: config.ALLOWED_HOSTS ?? defaultAllowedHosts(config.HOST),
      ops,
      redisReady: background.redisReady,
      pausedQueues: () => background.queueWatch.paused(),
    });
    const server = await listen(app, config.PORT);
    answerClientErrors(server);
    const url = `http://${config.HOST}:${config.PORT}`;
    logger.info(
      { url, authentication: mode.kind },
      `Tranche is listening on ${url} (UI ${url}/, API ${url}/api, docs ${url}/api/docs, queues ${url}/admin/queues, machine ${url}/machine, metrics ${url}/metrics); ` +
        (mode.kind === "keys" ? "API keys required" : mode.kind === "local" ? "local single user, no keys" : "authentication OFF"),
    );
    closers.push(async () => {
      await live.close();
      await stopListening();
      // A quit waits for Redis to come back; while it is away there is nothing to say goodbye to.
      if (redis.status === "ready") await redis.quit().catch(() => redis.disconnect());
      else redis.disconnect();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
  } else {
    // A worker has no API keys: its metrics port is for the local scraper; expose it only to trusted networks.
    const server = await listen(createOpsApp(createOpsRouter({ metrics, readiness }), logger), config.METRICS_PORT);
    const url = `http://${config.HOST}:${config.METRICS_PORT}`;
    logger.info({ url }, `Tranche worker is running (metrics ${url}/metrics, probes ${url}/healthz ${url}/readyz)`);
    closers.push(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down: finishing running jobs");
    for (const close of closers) await close();
    await background.close();
    await engine.close();
    await prisma.$disconnect();
    logger.info("stopped");
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

const role = (process.argv[2] ?? "all") as Role;
if (!["all", "api", "worker"].includes(role)) {
  process.stderr.write(`unknown role "${role}": use all, api or worker\n`);
  process.exit(2);
}
main(role).catch((err: unknown) => {
  process.stderr.write(`${err instanceof ConfigError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
