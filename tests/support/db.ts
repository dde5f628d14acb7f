/** A private database per test file, cloned from the run's migrated template in a few milliseconds. */
import { randomBytes } from "node:crypto";
import { Client } from "pg";
import { createPrisma, type PrismaClient } from "../../src/db";
import { adminUrl, dbUrl } from "./urls";

export interface TestDatabase {
  name: string;
  url: string;
  prisma: PrismaClient;
  /** Another client on the same database, as a second process would have. */
  newClient(max?: number): PrismaClient;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const template = process.env.TRANCHE_TEST_TEMPLATE;
  if (!template) throw new Error("TRANCHE_TEST_TEMPLATE is not set: run the tests through jest (globalSetup)");
  const name = `tranche_t_${process.ppid}_${randomBytes(4).toString("hex")}`;
  const admin = new Client({ connectionString: adminUrl() });
  await admin.connect();
  // CREATE DATABASE … TEMPLATE fails while another session is copying the same template.
  for (let attempt = 0; ; attempt++) {
    try {
      await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
      break;
    } catch (err) {
      if (attempt > 50 || !/is being accessed by other users/.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
    }
  }
  await admin.end();
  const url = dbUrl(name);
  const clients: PrismaClient[] = [];
  const newClient = (max = 10) => {
    const client = createPrisma(url, max);
    clients.push(client);
    return client;
  };
  const prisma = newClient();
  return {
    name,
    url,
    prisma,
    newClient,
    async drop() {
      await Promise.all(clients.map((c) => c.$disconnect()));
      const a = new Client({ connectionString: adminUrl() });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await a.end();
    },
  };
}
