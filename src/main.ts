/**
 * Tranche's processes. `npm start` runs everything in one process (API, workers, effects
 * relay, reconciler); `npm run api` and `npm run worker` run the two halves apart, and any
 * number of each may run against the same PostgreSQL and Redis.
 *
 * The database is created and migrated at start when missing. SIGINT/SIGTERM: stop
 * accepting requests and jobs, let running jobs finish, flush the outbox, close connections.
 */
import type { Server } from "node:http";
import { ConfigError, loadConfig } from "./config";
import { createPrisma, ensureDatabase, migrate } from "./db";
import { createEngine } from "./engine";
import { createLogger } from "./logger";
import { createApp } from "./server/app";
import { createDashboardRouter } from "./server/dashboard";
import { createLiveStream } from "./server/live";
import { createMachineRouter } from "./server/machine-view";
import { defaultAllowedHosts } from "./server/same-origin";
import { createUiRouter, ensureUiBuilt, UI_DIST } from "./server/ui";
import { startBackground } from "./workers";

type Role = "all" | "api" | "worker";

async function main(role: Role) {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL).child({ role });
  const database = new URL(config.DATABASE_URL).pathname.slice(1);
  if (await ensureDatabase(config.DATABASE_URL)) logger.info({ database }, "created database");
  const applied = await migrate(config.DATABASE_URL);
  if (applied.length) logger.info({ database, applied }, "applied migrations");

  const prisma = createPrisma(config.DATABASE_URL, config.DATABASE_POOL_SIZE);
  const engine = createEngine({
    prisma,
    databaseUrl: config.DATABASE_URL,
    poolSize: config.DATABASE_POOL_SIZE,
    logger,
    maxRunningBatches: config.MAX_RUNNING_BATCHES,
  });
  const background = await startBackground({ prisma, engine, config, logger, runWorkers: role !== "api" });
  const closers: (() => Promise<void>)[] = [];

  if (role !== "worker") {
    const live = await createLiveStream({ databaseUrl: config.DATABASE_URL, prisma, logger });
    await ensureUiBuilt(UI_DIST, logger);
    const app = createApp({
      ...engine,
      config,
      logger,
      bodyLimit: config.BODY_LIMIT,
      allowedHosts: config.ALLOWED_HOSTS ?? defaultAllowedHosts(config.HOST),
      apiMounts: [live.router],
      mounts: {
        "/admin/queues": createDashboardRouter(background.queues.all),
        "/machine": createMachineRouter({
          getBatch: (id) => engine.queries.getBatch(id),
          getHistory: (id) => engine.queries.getHistory(id, { afterSeq: 0, limit: 100_000 }),
        }),
        // Last: its index.html fallback for client routes would hide anything mounted after it.
        "/": createUiRouter({ distDir: UI_DIST }),
      },
    });
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(config.PORT, config.HOST, () => resolve(s));
    });
    const url = `http://${config.HOST}:${config.PORT}`;
    logger.info({ url }, `Tranche is listening on ${url} (UI ${url}/, API ${url}/api, queues ${url}/admin/queues, machine ${url}/machine)`);
    closers.push(async () => {
      await live.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
  } else {
    logger.info("Tranche worker is running");
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
