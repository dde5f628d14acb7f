// Bounded uploads and bounded history: a 500 MB multipart body is refused with 413 while the server's memory stays flat, files per request are capped, and a large request context is stored truncated with a marker.
import http from "node:http";
import type { AddressInfo } from "node:net";
import request from "supertest";
import { loadConfig } from "../src/config";
import { HISTORY_CONTEXT_MAX_BYTES } from "../src/history-context";
import { createApp } from "../src/server/app";
import { createHarness, testLogger, type Harness } from "./support/harness";

let h: Harness;
let server: http.Server;
let port: number;
beforeAll(async () => {
  h = await createHarness({ bodyLimit: "5mb" });
  // The shipped defaults (UPLOAD_LIMIT 256mb, MAX_DOCUMENT_BYTES 20 MiB, 1,000 files), not the test ones.
  const config = loadConfig({});
  const app = createApp({ ...h.engine, logger: testLogger, bodyLimit: config.BODY_LIMIT, config });
  server = await new Promise((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await h.close();
});

async function savedBatch(): Promise<string> {
  const res = await request(server)
    .post("/api/batches/save")
    .send({ name: "limits", analysis: { instructions: "Summarize." }, documents: [{ name: "a.txt", content: "alpha" }] })
    .expect(201);
  return res.body.batch.id as string;
}

const BOUNDARY = "----tranche-test-boundary";
const MB = 1024 * 1024;

/** A multipart body of `files` files of `fileBytes` each, produced lazily from one reused buffer. */
async function* multipartBody(files: number, fileBytes: number): AsyncGenerator<Buffer> {
  const block = Buffer.alloc(MB, "a");
  for (let f = 0; f < files; f++) {
    yield Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="part-${f}.txt"\r\nContent-Type: text/plain\r\n\r\n`);
    for (let sent = 0; sent < fileBytes; sent += block.length) yield block.subarray(0, Math.min(block.length, fileBytes - sent));
    yield Buffer.from("\r\n");
  }
  yield Buffer.from(`--${BOUNDARY}--\r\n`);
}

interface Sent {
  status: number;
  body: { code?: string; error?: string };
  /** Bytes the client managed to send before the server answered. */
  sentBytes: number;
  peakRssMb: number;
}

/** Streams `body` to the server until it answers (or the body ends), watching this process's RSS, which is the server's. */
function send(path: string, body: AsyncIterable<Buffer>, headers: Record<string, string> = {}): Promise<Sent> {
  return new Promise((resolve, reject) => {
    let peak = process.memoryUsage().rss;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    let sentBytes = 0;
    let answered = false;
    const req = http.request({ host: "127.0.0.1", port, path, method: "POST", headers: { "content-type": `multipart/form-data; boundary=${BOUNDARY}`, ...headers } });
    req.on("response", (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        clearInterval(sampler);
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()), sentBytes, peakRssMb: peak / MB });
      });
    });
    req.on("error", (err) => {
      // The server closes the connection after a 413; a write racing that close fails here.
      if (!answered) {
        clearInterval(sampler);
        reject(err);
      }
    });
    void (async () => {
      for await (const chunk of body) {
        if (answered || req.destroyed) return;
        sentBytes += chunk.length;
        if (!req.write(chunk)) await new Promise((r) => req.once("drain", r));
      }
      if (!answered) req.end();
    })().catch(() => undefined);
  });
}

describe("multipart uploads are bounded", () => {
  test("a 500 MB multipart upload (no declared length) is refused with 413 and the server's RSS stays bounded", async () => {
    const id = await savedBatch();
    const before = process.memoryUsage().rss / MB;
    // 26 files of 19.5 MB: each under MAX_DOCUMENT_BYTES, together past UPLOAD_LIMIT.
    const res = await send(`/api/batches/${id}/documents`, multipartBody(26, Math.floor(19.5 * MB)));
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ code: "payload_too_large" });
    expect(res.body.error).toMatch(/upload limit of 268435456 bytes/);
    // Refused once past 256 MB, long before the 500 MB were sent.
    expect(res.sentBytes).toBeLessThan(400 * MB);
    expect(res.peakRssMb - before).toBeLessThan(150);
    expect(await h.db.prisma.document.count({ where: { batchId: id } })).toBe(1);
    expect(await h.db.prisma.documentUpload.count()).toBe(0);
  }, 60_000);

  test("a declared Content-Length over the limit is refused before the body is read", async () => {
    const id = await savedBatch();
    const res = await send(`/api/batches/${id}/documents`, multipartBody(26, Math.floor(19.5 * MB)), { "content-length": String(500 * MB) });
    expect(res.status).toBe(413);
    expect(res.body.error).toMatch(/524288000 bytes; the upload limit is 268435456/);
    expect(res.sentBytes).toBeLessThan(64 * MB);
  });

  test("one file over MAX_DOCUMENT_BYTES is refused with 413 naming it", async () => {
    const id = await savedBatch();
    const res = await send(`/api/batches/${id}/documents`, multipartBody(1, 21 * MB));
    expect(res.status).toBe(413);
    expect(res.body.error).toMatch(/part-0\.txt.*larger than the limit of 20971520/);
  });

  test("more than MAX_FILES_PER_REQUEST files is refused with 413 and adds nothing", async () => {
    const id = await savedBatch();
    const res = await send(`/api/batches/${id}/documents`, multipartBody(1001, 3));
    expect(res.status).toBe(413);
    expect(res.body.error).toMatch(/more than 1000 files/);
    expect(await h.db.prisma.document.count({ where: { batchId: id } })).toBe(1);
  });

  test("creating a batch with multipart files goes through the same limits and lands whole", async () => {
    const res = await request(server)
      .post("/api/batches/save")
      .field("name", "uploaded")
      .field("instructions", "Summarize.")
      .attach("files", Buffer.from("one"), "one.txt")
      .attach("files", Buffer.from("<p>two</p>"), "two.html")
      .expect(201);
    expect(res.body.batch.document_count).toBe(2);
    const docs = await h.db.prisma.document.findMany({ where: { batchId: res.body.batch.id }, orderBy: { position: "asc" } });
    expect(docs.map((d) => [d.name, d.mimeType, Buffer.from(d.content).toString()])).toEqual([
      ["one.txt", "text/plain", "one"],
      ["two.html", "text/html", "<p>two</p>"],
    ]);
  });
});

describe("history stores a bounded context", () => {
  test("a refused request with a 12 KB context (under the API's 16 KB limit) is stored truncated, with a marker", async () => {
    const id = await savedBatch();
    const note = "x".repeat(12_000);
    await request(server).post(`/api/batches/${id}/action`).send({ action: "run", context: { note } }).expect(409);
    const entry = await h.db.prisma.historyEntry.findFirst({ where: { batchId: id, outcome: "refused" } });
    expect(entry?.context).toMatchObject({ truncated: true });
    const context = entry!.context as { original_bytes: number; preview: string };
    expect(context.original_bytes).toBeGreaterThan(12_000);
    expect(context.preview.startsWith('{"note":"xxx')).toBe(true);
    expect(Buffer.byteLength(JSON.stringify(context))).toBeLessThanOrEqual(HISTORY_CONTEXT_MAX_BYTES);
    const history = await request(server).get(`/api/batches/${id}/history`).expect(200);
    expect(JSON.stringify(history.body).length).toBeLessThan(20_000);
  });

  test("a small context is stored as sent", async () => {
    const id = await savedBatch();
    await request(server).post(`/api/batches/${id}/action`).send({ action: "run", context: { reason: "why not", ticket: "T-1" } }).expect(409);
    const entry = await h.db.prisma.historyEntry.findFirst({ where: { batchId: id, outcome: "refused" } });
    expect(entry?.context).toEqual({ reason: "why not", ticket: "T-1" });
  });
});
