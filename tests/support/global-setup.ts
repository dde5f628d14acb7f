/** Once per jest run: a freshly migrated template database that every test file clones. */
import { Client } from "pg";
import { ensureDatabase, migrate } from "../../src/db";
import { adminUrl, dbUrl } from "./urls";

export default async function globalSetup(): Promise<void> {
  const template = `tranche_tpl_${process.pid}`;
  const admin = new Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    // Databases left behind by runs that were killed before their teardown.
    const stale = await admin.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE 'tranche\\_t\\_%' OR datname LIKE 'tranche\\_tpl\\_%'`,
    );
    for (const { datname } of stale.rows) {
      const pid = /^tranche_(?:t|tpl)_(\d+)/.exec(datname)?.[1];
      if (pid && processAlive(Number(pid))) continue;
      await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    }
  } finally {
    await admin.end();
  }
  await ensureDatabase(dbUrl(template));
  await migrate(dbUrl(template));
  process.env.TRANCHE_TEST_TEMPLATE = template;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
