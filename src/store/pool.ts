/** The store's own node-postgres pool: the hot write path does not go through Prisma. */
import { Pool, type PoolClient } from "pg";
import type { Logger } from "../logger";

/** What a statement needs: a client inside a transaction, or the pool itself. */
export type Sql = Pick<PoolClient, "query">;

export function createPool(connectionString: string, max: number, logger: Logger): Pool {
  // Waiting for a connection is bounded so that an unreachable database answers 503, not never.
  const pool = new Pool({ connectionString, max, connectionTimeoutMillis: 10_000 });
  // An idle client whose server went away (a restart, a dropped test database) must not
  // crash the process: the next checkout gets a new connection.
  pool.on("error", (err) => logger.warn({ err }, "idle PostgreSQL connection lost"));
  return pool;
}
