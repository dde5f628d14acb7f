/**
 * Stores the queue work of one group as one outbox row, dispatched by the relay after commit.
 * In: batch id, version, the group's items in order. Rows: 1. Returns its id. `type` lists the
 * kinds of item the row holds (e.g. `enqueueAnalysis,withdrawJobs`), for people and dashboards.
 */
import type { OutboxPayload } from "../types";
import type { Sql } from "../pool";

export async function insertOutbox(sql: Sql, payload: OutboxPayload, version: number): Promise<string> {
  const { rows } = await sql.query<{ id: string }>(
    `INSERT INTO effects (batch_id, version, type, payload) VALUES ($1::uuid, $2, $3, $4::jsonb) RETURNING id::text`,
    [payload.batchId, version, [...new Set(payload.items.map((i) => i.type))].join(","), JSON.stringify(payload)],
  );
  return rows[0]!.id;
}
