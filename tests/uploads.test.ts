// Adding documents at scale: JSON and multipart pages of at most 1,000, a zip archive that lands whole or not at all, and the documents list read in pages.
import request from "supertest";
import JSZip from "jszip";
import { createHarness, type Harness } from "./support/harness";

let h: Harness;
beforeAll(async () => {
  h = await createHarness({ bodyLimit: "5mb" });
});
afterAll(() => h.close());

const api = () => request(h.app);

async function savedBatch(documents = 1): Promise<string> {
  const res = await api()
    .post("/api/batches/save")
    .send({
      name: "many",
      analysis: { instructions: "Summarize." },
      documents: Array.from({ length: documents }, (_, i) => ({ name: `seed-${i}.txt`, content: `seed ${i}` })),
    })
    .expect(201);
  return res.body.batch.id as string;
}

const page = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => ({ name: `doc-${String(from + i).padStart(5, "0")}.txt`, content: `document number ${from + i}` }));

async function allDocuments(batchId: string, limit: number) {
  const names: string[] = [];
  let after = -1;
  let pages = 0;
  for (;;) {
    const res = await api().get(`/api/batches/${batchId}/documents?after_position=${after}&limit=${limit}`).expect(200);
    pages += 1;
    names.push(...res.body.documents.map((d: { name: string }) => d.name));
    if (res.body.next_after_position === null) return { names, pages };
    after = res.body.next_after_position;
  }
}

const spooled = () => h.db.prisma.documentUpload.count();

describe("paged adds", () => {
  test("3,000 documents in three JSON pages of 1,000 are all there, in order, and read back in pages", async () => {
    const id = await savedBatch(0);
    for (let p = 0; p < 3; p++) {
      const res = await api().post(`/api/batches/${id}/documents`).send({ documents: page(p * 1000, 1000) }).expect(201);
      expect(res.body.added).toBe(1000);
      expect(res.body.document_ids).toHaveLength(1000);
      expect(res.body.batch.document_count).toBe((p + 1) * 1000);
    }
    const { names, pages } = await allDocuments(id, 700);
    expect(names).toHaveLength(3000);
    expect(names[0]).toBe("doc-00000.txt");
    expect(names[2999]).toBe("doc-02999.txt");
    expect(pages).toBe(5);
    expect(new Set(names).size).toBe(3000);
    const batch = await api().get(`/api/batches/${id}`).expect(200);
    expect(batch.body.batch).toMatchObject({ document_count: 3000, version: 4 });
  });

  test("a JSON page of more than 1,000 documents is refused with 400 and adds nothing", async () => {
    const id = await savedBatch(1);
    const res = await api().post(`/api/batches/${id}/documents`).send({ documents: page(0, 1001) }).expect(400);
    expect(res.body).toMatchObject({ code: "validation_failed" });
    expect(res.body.error).toMatch(/body\.documents/);
    expect(await h.db.prisma.document.count({ where: { batchId: id } })).toBe(1);
  });

  test("a multipart page lands through the spool and leaves nothing spooled", async () => {
    const id = await savedBatch(1);
    let req = api().post(`/api/batches/${id}/documents`);
    for (let i = 0; i < 25; i++) req = req.attach("files", Buffer.from(`file ${i}`), `f-${i}.txt`);
    const res = await req.expect(201);
    expect(res.body.added).toBe(25);
    const docs = await h.db.prisma.document.findMany({ where: { batchId: id }, orderBy: { position: "asc" } });
    expect(docs.map((d) => d.position)).toEqual(Array.from({ length: 26 }, (_, i) => i));
    expect(Buffer.from(docs[25]!.content).toString()).toBe("file 24");
    expect(await spooled()).toBe(0);
  });

  test("a multipart file whose type cannot be told refuses the whole request and adds nothing", async () => {
    const id = await savedBatch(1);
    const res = await api()
      .post(`/api/batches/${id}/documents`)
      .attach("files", Buffer.from("ok"), "good.txt")
      .attach("files", Buffer.from("??"), "mystery.bin")
      .expect(400);
    expect(res.body.error).toMatch(/files\[1\].*mystery\.bin/);
    expect(await h.db.prisma.document.count({ where: { batchId: id } })).toBe(1);
    expect(await spooled()).toBe(0);
  });

  test("adding to a batch that is no longer SAVED is refused and its spooled upload is discarded", async () => {
    const id = await savedBatch(1);
    await api().post(`/api/batches/${id}/stage`).send({}).expect(200);
    const res = await api().post(`/api/batches/${id}/documents`).attach("files", Buffer.from("late"), "late.txt").expect(409);
    expect(res.body.code).toBe("transition_refused");
    expect(await h.db.prisma.document.count({ where: { batchId: id } })).toBe(1);
    expect(await spooled()).toBe(0);
  });
});

describe("zip archives", () => {
  async function zipOf(entries: Record<string, string | Buffer>) {
    const zip = new JSZip();
    for (const [name, content] of Object.entries(entries)) zip.file(name, content);
    return zip.generateAsync({ type: "nodebuffer", compression: "DEFLATE" });
  }

  test("an archive's documents all land, folders and metadata skipped, in the archive's order", async () => {
    const id = await savedBatch(2);
    const entries: Record<string, string> = {};
    for (let i = 0; i < 120; i++) entries[`reports/r-${String(i).padStart(3, "0")}.txt`] = `report ${i}`;
    entries["__MACOSX/reports/._r-000.txt"] = "resource fork";
    entries["notes/readme.md"] = "# Notes";
    const res = await api().post(`/api/batches/${id}/documents`).set("content-type", "application/zip").send(await zipOf(entries)).expect(201);
    expect(res.body.added).toBe(121);
    expect(res.body.batch.document_count).toBe(123);
    const docs = await h.db.prisma.document.findMany({ where: { batchId: id }, orderBy: { position: "asc" }, select: { name: true, mimeType: true, content: true, position: true } });
    expect(docs).toHaveLength(123);
    expect(docs[2]).toMatchObject({ name: "reports/r-000.txt", mimeType: "text/plain", position: 2 });
    expect(Buffer.from(docs[121]!.content).toString()).toBe("report 119");
    expect(docs[122]).toMatchObject({ name: "notes/readme.md", mimeType: "text/markdown" });
    expect(await spooled()).toBe(0);
    const history = await h.db.prisma.historyEntry.findFirst({ where: { batchId: id, eventType: "DOCUMENTS_ADDED" } });
    expect(history?.context).toMatchObject({ count: 121 });
  });

  test("a broken zip is refused with 400 and adds nothing", async () => {
    const id = await savedBatch(1);
    const good = await zipOf({ "a.txt": "alpha", "b.txt": "beta" });
    for (const broken of [Buffer.from("this is not a zip file at all"), good.subarray(0, good.length - 30)]) {
      const res = await api().post(`/api/batches/${id}/documents`).set("content-type", "application/zip").send(broken).expect(400);
      expect(res.body).toMatchObject({ success: false, code: "validation_failed" });
      expect(res.body.error).toMatch(/archive/);
    }
    expect(await h.db.prisma.document.count({ where: { batchId: id } })).toBe(1);
    expect(await spooled()).toBe(0);
  });

  test("an entry that is corrupt inside a valid directory fails the whole archive: nothing added, nothing spooled", async () => {
    const id = await savedBatch(1);
    const entries: Record<string, string> = {};
    for (let i = 0; i < 600; i++) entries[`d-${i}.txt`] = `document ${i} `.repeat(20);
    const zip = await zipOf(entries);
    // Flip bytes in the compressed data of a late entry: its directory still reads, its CRC does not match.
    const target = zip.indexOf(Buffer.from("d-590.txt"));
    expect(target).toBeGreaterThan(0);
    for (let i = target + 12; i < target + 30; i++) zip[i] = zip[i]! ^ 0xff;
    const res = await api().post(`/api/batches/${id}/documents`).set("content-type", "application/zip").send(zip).expect(400);
    expect(res.body.error).toMatch(/archive/);
    expect(await h.db.prisma.document.count({ where: { batchId: id } })).toBe(1);
    expect(await spooled()).toBe(0);
  });

  test("an archive with an entry of unknown type is refused before anything is written", async () => {
    const id = await savedBatch(1);
    const res = await api()
      .post(`/api/batches/${id}/documents`)
      .set("content-type", "application/zip")
      .send(await zipOf({ "a.txt": "alpha", "tool.exe": "MZ" }))
      .expect(400);
    expect(res.body.error).toMatch(/tool\.exe.*type/);
    expect(await h.db.prisma.document.count({ where: { batchId: id } })).toBe(1);
  });

  test("an archive entry larger than MAX_DOCUMENT_BYTES is refused with 413 from the directory", async () => {
    const id = await savedBatch(1);
    const res = await api()
      .post(`/api/batches/${id}/documents`)
      .set("content-type", "application/zip")
      .send(await zipOf({ "big.txt": "x".repeat(1024 * 1024 + 1) }))
      .expect(413);
    expect(res.body).toMatchObject({ code: "payload_too_large" });
    expect(res.body.error).toMatch(/big\.txt/);
    expect(await h.db.prisma.document.count({ where: { batchId: id } })).toBe(1);
  });
});
