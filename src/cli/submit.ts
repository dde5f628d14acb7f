/**
 * `tranche submit`: collects the documents (a folder, walked, or files), uploads them in pages
 * so a large folder never makes one huge request, stages the batch, waits for staging and runs
 * it. What cannot be read, or whose type cannot be told from its name, is skipped with a message.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { inferMimeType } from "../mime";
import type { BatchView, Client } from "./client";
import { watchBatch } from "./watch";

export interface Collected {
  files: { path: string; name: string; mimeType: string }[];
  skipped: { path: string; why: string }[];
}

/** Every regular file under the given folders and files, with the document name the batch will show. */
export async function collectDocuments(inputs: string[]): Promise<Collected> {
  const out: Collected = { files: [], skipped: [] };
  const visit = async (full: string, name: string) => {
    let info;
    try {
      info = await stat(full);
    } catch (err) {
      out.skipped.push({ path: full, why: (err as NodeJS.ErrnoException).code ?? String(err) });
      return;
    }
    if (info.isDirectory()) {
      let entries: string[];
      try {
        entries = (await readdir(full)).sort();
      } catch (err) {
        out.skipped.push({ path: full, why: (err as NodeJS.ErrnoException).code ?? String(err) });
        return;
      }
      for (const entry of entries) {
        if (entry.startsWith(".")) continue;
        await visit(path.join(full, entry), name ? `${name}/${entry}` : entry);
      }
      return;
    }
    if (!info.isFile()) {
      out.skipped.push({ path: full, why: "not a regular file" });
      return;
    }
    const mimeType = inferMimeType(full);
    if (!mimeType) {
      out.skipped.push({ path: full, why: "unknown document type (txt, md, html, pdf, docx, json or csv)" });
      return;
    }
    out.files.push({ path: full, name: name || path.basename(full), mimeType });
  };
  for (const input of inputs) {
    const isDir = await stat(input).then((s) => s.isDirectory(), () => false);
    // A folder's documents are named relative to it; a file by its own name.
    await visit(input, isDir ? "" : path.basename(input));
  }
  return out;
}

export interface SubmitOptions {
  name: string;
  analysis: Record<string, unknown>;
  /** Most files and bytes in one upload request. */
  pageFiles: number;
  pageBytes: number;
  /** Told of every page uploaded, every file skipped, and each step. */
  report: (message: string) => void;
}

/** Uploads, stages and runs; resolves with the batch once it is running (or has failed to stage). */
export async function submitBatch(client: Client, collected: Collected, options: SubmitOptions): Promise<{ batch: BatchView; uploaded: number; skipped: number }> {
  let batchId: string | undefined;
  let uploaded = 0;
  let skipped = collected.skipped.length;
  let page = new FormData();
  let pageCount = 0;
  let pageBytes = 0;

  const flush = async () => {
    if (!pageCount) return;
    if (!batchId) {
      page.set("name", options.name);
      page.set("analysis", JSON.stringify(options.analysis));
      batchId = (await client.postForm<{ batch: BatchView }>("/api/batches/save", page)).batch.id;
    } else {
      await client.postForm(`/api/batches/${batchId}/documents`, page);
    }
    uploaded += pageCount;
    options.report(`uploaded ${uploaded} of ${collected.files.length} documents`);
    page = new FormData();
    pageCount = 0;
    pageBytes = 0;
  };

  for (const file of collected.files) {
    let content: Buffer;
    try {
      content = await readFile(file.path);
    } catch (err) {
      skipped++;
      options.report(`skipping ${file.path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      continue;
    }
    if (pageCount && (pageCount >= options.pageFiles || pageBytes + content.length > options.pageBytes)) await flush();
    page.append("files", new Blob([new Uint8Array(content)], { type: file.mimeType }), file.name);
    pageCount++;
    pageBytes += content.length;
  }
  await flush();
  if (!batchId) throw new Error("no readable documents to submit");

  await client.post(`/api/batches/${batchId}/stage`, { reason: "tranche submit" });
  options.report(`staging batch ${batchId}`);
  const staged = await watchBatch(client, batchId, { until: ["STAGED", "FAILED_STAGING", "CANCELLED"] });
  if (staged.status !== "STAGED") return { batch: staged, uploaded, skipped };
  const run = await client.post<{ batch: BatchView }>(`/api/batches/${batchId}/run`, { reason: "tranche submit" });
  options.report(`running batch ${batchId}`);
  return { batch: run.batch, uploaded, skipped };
}
