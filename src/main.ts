/**
 * `npm start`: one process with the whole system against local defaults. Creates and
 * migrates the database when missing, listens on PORT, and shuts down cleanly on
 * SIGINT/SIGTERM (stop accepting, finish what is in flight, close connections).
 */
import type { Server } from "node:http";
import { ConfigError, loadConfig } from "./config";
import { createPrisma, ensureDatabase, migrate } from "./db";
import { createEngine } from "./engine";
import { createLogger } from "./logger";
import { createApp } from "./server/app";

async function main() {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL);
  const database = new URL(config.DATABASE_URL).pathname.slice(1);
  if (await ensureDatabase(config.DATABASE_URL)) logger.info({ database }, "created database");
  const applied = await migrate(config.DATABASE_URL);
  if (applied.length) logger.info({ database, applied }, "applied migrations");

  const prisma = createPrisma(config.DATABASE_URL, config.DATABASE_POOL_SIZE);
  const engine = createEngine({ prisma, logger, maxRunningBatches: config.MAX_RUNNING_BATCHES });
  const app = createApp({ ...engine, config, logger, bodyLimit: config.BODY_LIMIT });

  const server: Server = await new Promise((resolve) => {
    const s = app.listen(config.PORT, config.HOST, () => resolve(s));
  });
  logger.info({ url: `http://${config.HOST}:${config.PORT}` }, `Tranche is listening on http://${config.HOST}:${config.PORT}`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await prisma.$disconnect();
    logger.info("stopped");
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof ConfigError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
