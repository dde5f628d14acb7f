// The per-event dispatch statements read an index of pending units in document order, whatever the batch's size and whether or not ANALYZE ever ran (autovacuum is off on these machines): never a scan of the batch's units.
import { DISPATCH_DOCUMENTS, DISPATCH_TASKS } from "../src/store/sql/dispatch-units";
import { createBatch } from "./support/drive";
import { createHarness, type Harness } from "./support/harness";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(() => h.close());

async function planOf(sql: string, params: unknown[]): Promise<string> {
  const { rows } = await h.engine.store.pool.query<{ "QUERY PLAN": unknown }>(`EXPLAIN (FORMAT JSON) ${sql}`, params);
  return JSON.stringify(rows[0]!["QUERY PLAN"]);
}

test("dispatch reads an index of pending units in a batch of 20,000, before and after ANALYZE", async () => {
  const id = await createBatch({ service: h.engine.service, prisma: h.db.prisma }, { documents: 1 });
  const pool = h.engine.store.pool;
  // A big batch mid-run: most units settled, a few pending (written directly: the planner is what is under test).
  await pool.query(
    `INSERT INTO documents (id, batch_id, position, name, mime_type, content, size_bytes, sha256, stage_run_id, stage_status)
     SELECT gen_random_uuid(), $1, g, 'd' || g, 'text/plain', '\\x00'::bytea, 1, '', 1, CASE WHEN g > 19900 THEN 'pending' ELSE 'succeeded' END
     FROM generate_series(1, 20000) g`,
    [id],
  );
  await pool.query(
    `INSERT INTO tasks (id, batch_id, run_id, document_id, position, status)
     SELECT $1::text || '-r1-' || d.id::text, d.batch_id, 1, d.id, d.position, CASE WHEN d.position > 19900 THEN 'pending' ELSE 'succeeded' END
     FROM documents d WHERE d.batch_id = $1::uuid`,
    [id],
  );
  for (const analyzed of [false, true]) {
    if (analyzed) await pool.query("ANALYZE documents; ANALYZE tasks");
    const tasks = await planOf(DISPATCH_TASKS, [id, 1, 64]);
    const docs = await planOf(DISPATCH_DOCUMENTS, [id, 1, 64]);
    // Straight off an index of pending units in document order: no scan of the batch, no sort.
    expect(tasks).toMatch(/"Index Name":"(tasks_pending_idx|tasks_batch_id_run_id_status_position_idx)"/);
    expect(docs).toMatch(/"Index Name":"(documents_pending_idx|documents_batch_id_stage_run_id_stage_status_position_idx)"/);
    for (const plan of [tasks, docs]) {
      expect(plan).not.toMatch(/"Seq Scan"|"Bitmap Heap Scan"|"Node Type":"Sort"/);
    }
  }
});
