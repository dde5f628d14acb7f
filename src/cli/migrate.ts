/** `npm run db:migrate`: creates the database in DATABASE_URL if missing and applies pending migrations. */
import { loadConfig } from "../config";
import { ensureDatabase, migrate } from "../db";
import { createLogger } from "../logger";

async function main() {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL);
  const created = await ensureDatabase(config.DATABASE_URL);
  const applied = await migrate(config.DATABASE_URL);
  logger.info({ database: new URL(config.DATABASE_URL).pathname.slice(1), created, applied }, "database is up to date");
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
