// Reads that stay small however large a batch grows: the visualizer's path computed in the database (repeats folded, only the latest steps), history in pages, and the batch view without counting documents.
import request from "supertest";
import { createHarness, type Harness } from "./support/harness";

let h: Harness;
beforeAll(async () => {
  h = await createHarness({ bodyLimit: "1mb" });
});
afterAll(() => h.close());

const api = () => request(h.app);

async function savedBatch(): Promise<string> {
  const res = await api()
    .post("/api/batches/save")
    .send({ name: "reads", analysis: { instructions: "Summarize." }, documents: [{ name: "a.txt", content: "alpha" }] })
    .expect(201);
  return res.body.batch.id as string;
}

describe("the visualizer's path", () => {
  test("is the accepted states in order, repeats and refusals folded", async () => {
    const id = await savedBatch();
    await api().post(`/api/batches/${id}/run`).send({}).expect(409);
    await api().post(`/api/batches/${id}/documents`).send({ documents: [{ name: "b.txt", content: "beta" }] }).expect(201);
    await api().post(`/api/batches/${id}/stage`).send({}).expect(200);
    await api().post(`/api/batches/${id}/cancel`).send({}).expect(200);
    expect(await h.engine.queries.getPath(id)).toEqual({ states: ["SAVED", "STAGING", "CANCELLED"], omitted: 0 });
  });

  test("keeps only the latest steps and says how many earlier ones it left out", async () => {
    const id = await savedBatch();
    for (let i = 0; i < 3; i++) {
      await api().post(`/api/batches/${id}/stage`).send({}).expect(200);
      await api().post(`/api/batches/${id}/cancel`).send({}).expect(200);
      await api().post(`/api/batches/${id}/reset-to-prestage`).send({}).expect(200);
    }
    // SAVED, then (STAGING, CANCELLED, SAVED) three times: 10 steps.
    expect(await h.engine.queries.getPath(id, 4)).toEqual({ states: ["SAVED", "STAGING", "CANCELLED", "SAVED"], omitted: 6 });
    expect((await h.engine.queries.getPath(id)).states).toHaveLength(10);
  });
});

describe("history in pages", () => {
  test("after_seq and limit walk the whole history without overlap", async () => {
    const id = await savedBatch();
    for (let i = 0; i < 7; i++) await api().post(`/api/batches/${id}/run`).send({}).expect(409);
    const seqs: number[] = [];
    let after = 0;
    for (;;) {
      const res = await api().get(`/api/batches/${id}/history?after_seq=${after}&limit=3`).expect(200);
      const page = res.body.history as { seq: number }[];
      expect(page.length).toBeLessThanOrEqual(3);
      if (!page.length) break;
      seqs.push(...page.map((e) => e.seq));
      after = page[page.length - 1]!.seq;
    }
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
});

describe("the batch view", () => {
  test("shows the machine's document count, which follows adds and removals", async () => {
    const id = await savedBatch();
    const added = await api().post(`/api/batches/${id}/documents`).send({ documents: [{ name: "b.txt", content: "b" }, { name: "c.txt", content: "c" }] }).expect(201);
    expect(added.body.batch.document_count).toBe(3);
    await api().delete(`/api/batches/${id}/documents/${added.body.document_ids[0]}`).expect(200);
    const res = await api().get(`/api/batches/${id}`).expect(200);
    expect(res.body.batch.document_count).toBe(2);
    expect(await h.db.prisma.document.count({ where: { batchId: id } })).toBe(2);
    const list = await api().get("/api/batches?limit=500").expect(200);
    expect(list.body.batches.find((b: { id: string }) => b.id === id).document_count).toBe(2);
  });
});
