/**
 * The extractor process: runs `stageText` for one document at a time on the worker's behalf, so that a
 * document that hangs a parser, exhausts memory or crashes it takes down only this process. It reads the
 * document's bytes from PostgreSQL itself: decoding a 20 MB bytea blocks an event loop for seconds, and
 * the worker's event loop must keep renewing its job locks. Started by `extractor-pool.ts` over an IPC
 * channel; exits when the channel closes (its worker is gone).
 */
import { Pool } from "pg";
import { ExtractionError } from "./extract";
import type { ExtractorReply, ExtractorRequest } from "./extractor-protocol";
import { stageText, type StagedText } from "./stage-text";

/** One connection, closed a second after each document: idle extractors hold no database connection. */
let database: { url: string; pool: Pool } | undefined;

function reply(message: ExtractorReply): void {
  process.send?.(message);
}

async function stage(request: ExtractorRequest): Promise<StagedText | null> {
  if (database?.url !== request.databaseUrl) {
    await database?.pool.end();
    database = { url: request.databaseUrl, pool: new Pool({ connectionString: request.databaseUrl, max: 1, idleTimeoutMillis: 1000 }) };
  }
  const { rows } = await database.pool.query<{ name: string; mime_type: string; content: Buffer }>(
    "SELECT name, mime_type, content FROM documents WHERE id = $1",
    [request.documentId],
  );
  const doc = rows[0];
  if (!doc) return null;
  return stageText({ content: doc.content, mimeType: doc.mime_type, name: doc.name }, request.limits, request.chunking);
}

process.on("message", (request: ExtractorRequest) => {
  stage(request).then(
    (result) => reply({ id: request.id, ok: true, result }),
    (err: unknown) =>
      reply({
        id: request.id,
        ok: false,
        ...(err instanceof ExtractionError && { code: err.code }),
        message: err instanceof Error ? err.message : String(err),
      }),
  );
});
process.on("disconnect", () => process.exit(0));
reply({ ready: true });
