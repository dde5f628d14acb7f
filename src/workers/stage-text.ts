/**
 * Everything staging does to one document's bytes before the report: extract, bound, chunk, hash.
 * It runs inside an extractor process (see `extractor-pool.ts`), so nothing here may assume it shares
 * memory with the worker.
 */
import { createHash } from "node:crypto";
import { isWithinTokenLimit } from "gpt-tokenizer";
import { chunkText, type Chunk, type ChunkOptions } from "./chunk";
import { ExtractionError, extractText, type ExtractLimits } from "./extract";

export interface StageLimits extends ExtractLimits {
  /** o200k_base tokens of a document's text: more would cost too much to analyse. */
  maxTokens: number;
}

/** A document ready to be reported staged. */
export interface StagedText {
  text: string;
  chunks: Chunk[];
  tokenCount: number;
  textSha256: string;
}

export interface StageInput {
  content: Uint8Array;
  mimeType: string;
  name: string;
}

// A document may contain "<|endoftext|>"; here it is text, not a control token.
const AS_TEXT = { disallowedSpecial: new Set<string>() };

/**
 * @throws {@link ExtractionError} as `extractText` does, and `too_many_tokens` for a text over `maxTokens`
 *   (counted before chunking, stopping at the limit).
 */
export async function stageText(input: StageInput, limits: StageLimits, chunking: ChunkOptions): Promise<StagedText> {
  const text = await extractText(Buffer.from(input.content), input.mimeType, input.name, limits);
  if (isWithinTokenLimit(text, limits.maxTokens, AS_TEXT) === false) {
    throw new ExtractionError("too_many_tokens", `${input.name}: more than ${limits.maxTokens} tokens of text`);
  }
  const chunks = chunkText(text, chunking);
  return {
    text,
    chunks,
    tokenCount: chunks.reduce((n, c) => n + c.tokens, 0),
    textSha256: createHash("sha256").update(text).digest("hex"),
  };
}
