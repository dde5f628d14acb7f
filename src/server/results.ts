/** Streams a batch's results as JSON, JSON Lines or CSV, writing as rows are read. */
import type { Response } from "express";
import type { ResultRecord } from "../batch-queries";

export const RESULT_FORMATS = ["json", "jsonl", "csv"] as const;
export type ResultFormat = (typeof RESULT_FORMATS)[number];

const CSV_COLUMNS: (keyof ResultRecord)[] = [
  "document_id", "name", "mime_type", "status", "output", "error", "input_tokens", "output_tokens", "document_tokens", "latency_ms", "attempts", "run_id",
  "requests", "cached_input_tokens", "cost_usd", "cached", "strategy",
];

function csvCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Writes, honouring backpressure so a slow client does not make us buffer the whole batch. */
async function write(res: Response, chunk: string) {
  if (!res.write(chunk)) await new Promise((resolve) => res.once("drain", resolve));
}

export async function streamResults(res: Response, batchId: string, format: ResultFormat, rows: AsyncIterable<ResultRecord>) {
  const first = rows[Symbol.asyncIterator]();
  // Pull the first row before sending headers, so an unknown batch still answers 404.
  let next = await first.next();
  const filename = `batch-${batchId}-results.${format}`;
  const type = { json: "application/json", jsonl: "application/x-ndjson", csv: "text/csv" }[format];
  res.status(200).set({ "content-type": `${type}; charset=utf-8`, "content-disposition": `attachment; filename="${filename}"` });
  if (format === "json") await write(res, `{"success":true,"batch_id":"${batchId}","results":[`);
  if (format === "csv") await write(res, `${CSV_COLUMNS.join(",")}\n`);
  let n = 0;
  while (!next.done) {
    const r = next.value;
    if (format === "json") await write(res, `${n ? "," : ""}${JSON.stringify(r)}`);
    else if (format === "jsonl") await write(res, `${JSON.stringify(r)}\n`);
    else await write(res, `${CSV_COLUMNS.map((c) => csvCell(r[c])).join(",")}\n`);
    n++;
    next = await first.next();
  }
  if (format === "json") await write(res, "]}");
  res.end();
}
