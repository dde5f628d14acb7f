/**
 * The change channel: every committed batch change is announced with `pg_notify` inside its
 * transaction, so PostgreSQL delivers it only once committed, to every listening process.
 */
import { BATCH_CHANNEL, type BatchChange } from "../vocabulary";
import type { Sql } from "./pool";

export { BATCH_CHANNEL, type BatchChange };

/** In: one change. Rows: none (one notification, delivered at commit). */
export async function notifyChange(sql: Sql, change: BatchChange): Promise<void> {
  await sql.query(`SELECT pg_notify($1, $2)`, [BATCH_CHANNEL, JSON.stringify(change)]);
}
