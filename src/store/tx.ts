/**
 * Transactions on the store's pool: READ COMMITTED, rolled back on any error, retried (a
 * few times, with jitter) when PostgreSQL reports a deadlock or a serialization failure.
 */
import type { Pool, PoolClient } from "pg";

const MAX_ATTEMPTS = 8;

export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const client = await pool.connect();
    let broken = false;
    // A connection that dies while checked out (PostgreSQL restarted) emits "error" on the
    // client; unheard, it would crash the process. The statement in flight fails anyway.
    const lost = () => {
      broken = true;
    };
    client.on("error", lost);
    try {
      await client.query("BEGIN");
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (err) {
      try {
        await client.query("ROLLBACK");
      } catch {
        broken = true;
      }
      if (attempt < MAX_ATTEMPTS && isTransient(err)) {
        await sleep(Math.random() * 20 * attempt);
        continue;
      }
      throw err;
    } finally {
      client.off("error", lost);
      client.release(broken);
    }
  }
}

export function isTransient(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === "40001" || code === "40P01";
}

/** A statement refused because of the data it carried (invalid text, out of range, bad JSON…), not because of the database's state. */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code ?? "";
  return code.startsWith("22");
}

function sleep(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
