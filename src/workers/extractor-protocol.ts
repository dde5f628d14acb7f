/** The messages between the extractor pool and its extractor processes. */
import type { ChunkOptions } from "./chunk";
import type { ExtractionErrorCode } from "./extract";
import type { StagedText, StageLimits } from "./stage-text";

/** Stage one document, whose bytes the extractor reads from PostgreSQL itself. */
export interface ExtractorRequest {
  id: number;
  databaseUrl: string;
  documentId: string;
  limits: StageLimits;
  chunking: ChunkOptions;
}

export type ExtractorReply =
  | { ready: true }
  /** `result` is null when the document no longer exists. */
  | { id: number; ok: true; result: StagedText | null }
  /** `code` is set when the document is at fault; without it the failure is ours (and worth a retry). */
  | { id: number; ok: false; code?: ExtractionErrorCode; message: string };
