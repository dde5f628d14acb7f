/**
 * Appends a group's history: one row per submission, accepted or not, in order.
 * In: batch id and the planner's rows. Rows: one per submission; expected: all.
 */
import type { HistoryRow } from "../plan";
import type { Sql } from "../pool";

export async function insertHistory(sql: Sql, batchId: string, rows: HistoryRow[]): Promise<number> {
  if (!rows.length) return 0;
  const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));
  const r = await sql.query(
    `INSERT INTO history (batch_id, seq, outcome, event_type, source, from_state, to_state, version, reason, context, event, actor)
     SELECT $1::uuid, u.seq, u.outcome, u.event_type, u.source, u.from_state, u.to_state, u.version, u.reason, u.context::jsonb, u.event::jsonb, u.actor
     FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], $9::text[], $10::text[], $11::text[], $12::text[])
       AS u(seq, outcome, event_type, source, from_state, to_state, version, reason, context, event, actor)`,
    [
      batchId,
      rows.map((h) => h.seq),
      rows.map((h) => h.outcome),
      rows.map((h) => h.eventType),
      rows.map((h) => h.source),
      rows.map((h) => h.fromState),
      rows.map((h) => h.toState),
      rows.map((h) => h.version),
      rows.map((h) => h.reason),
      rows.map((h) => json(h.context)),
      rows.map((h) => json(h.event)),
      rows.map((h) => h.actor ?? null),
    ],
  );
  return r.rowCount ?? 0;
}
