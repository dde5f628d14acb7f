/** Shared steps of the end-to-end tests: upload files through the API, read the fake provider's log. */
import { readFileSync } from "node:fs";
import path from "node:path";
import request from "supertest";
import type { ChatRequestBody } from "./fake-llm";
import type { TestSystem } from "./system";

export const FIXTURES = path.join(__dirname, "..", "fixtures", "documents");

/** Creates a batch through the multipart API with the named fixture files (or generated text files). */
export async function uploadBatch(s: TestSystem, opts: { name?: string; files?: string[]; texts?: number; analysis?: Record<string, unknown> }) {
  let req = request(s.app)
    .post("/api/batches/save")
    .field("name", opts.name ?? "e2e")
    .field("analysis", JSON.stringify({ instructions: "Summarise the document.", ...opts.analysis }));
  for (const file of opts.files ?? []) req = req.attach("files", readFileSync(path.join(FIXTURES, file)), file);
  for (let i = 0; i < (opts.texts ?? 0); i++) {
    req = req.attach("files", Buffer.from(`Document ${i}. Ada Lovelace met Charles Babbage in London to discuss engines.`), `doc-${String(i).padStart(3, "0")}.txt`);
  }
  const res = await req.expect(201);
  return res.body.batch.id as string;
}

/** The document name a provider request was about (the user message names it). */
export function documentOf(body: ChatRequestBody): string {
  const text = JSON.stringify(body.messages ?? []);
  return /(doc-\d+\.txt|[\w-]+\.(?:txt|md|html|pdf|docx))/.exec(text)?.[1] ?? "?";
}

export async function act(s: TestSystem, batchId: string, action: string, context: Record<string, unknown> = {}) {
  return request(s.app).post(`/api/batches/${batchId}/action`).send({ action, context });
}
