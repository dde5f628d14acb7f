// schema.prisma and prisma/migrations describe the same database: one database built from each must have identical tables, columns, indexes and constraints.
import { Client } from "pg";
import { ensureDatabase, migrate } from "../src/db";
import { schemaSql } from "../scripts/schema-sql";
import { adminUrl, dbUrl } from "./support/urls";

const suffix = `${process.pid}_${Date.now()}`;
const fromMigrations = `tranche_t_${process.ppid}_drift_m_${suffix}`;
const fromSchema = `tranche_t_${process.ppid}_drift_s_${suffix}`;

async function describeDatabase(name: string) {
  const c = new Client({ connectionString: dbUrl(name) });
  await c.connect();
  try {
    const columns = await c.query(`
      SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default, character_maximum_length, datetime_precision
      FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '_prisma_migrations'
      ORDER BY table_name, column_name`);
    const indexes = await c.query(`
      SELECT tablename, indexname, indexdef FROM pg_indexes
      WHERE schemaname = 'public' AND tablename <> '_prisma_migrations' ORDER BY tablename, indexname`);
    const constraints = await c.query(`
      SELECT conrelid::regclass::text AS table_name, conname, pg_get_constraintdef(oid) AS def
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> '_prisma_migrations'
      ORDER BY 1, 2`);
    return { columns: columns.rows, indexes: indexes.rows, constraints: constraints.rows };
  } finally {
    await c.end();
  }
}

afterAll(async () => {
  const a = new Client({ connectionString: adminUrl() });
  await a.connect();
  for (const name of [fromMigrations, fromSchema]) await a.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await a.end();
});

test("migrations and schema.prisma agree", async () => {
  await ensureDatabase(dbUrl(fromMigrations));
  await migrate(dbUrl(fromMigrations));

  await ensureDatabase(dbUrl(fromSchema));
  const c = new Client({ connectionString: dbUrl(fromSchema) });
  await c.connect();
  await c.query(await schemaSql());
  await c.end();

  const [m, s] = await Promise.all([describeDatabase(fromMigrations), describeDatabase(fromSchema)]);
  expect(m.columns.length).toBeGreaterThan(40);
  expect(m).toEqual(s);
});
