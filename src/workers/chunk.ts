/**
 * Splits a document's text into overlapping, token-bounded chunks for analysis.
 *
 * The text is encoded once: the tokenizer yields the tokens of each of its pre-tokenized pieces (about a word
 * each), which gives every piece a character offset and a token count. Chunks are then packed from whole pieces,
 * ending at the strongest boundary (paragraph, line or sentence, word) in the back half of the token budget.
 * Runs without spaces are tokenized in slices (see `../tokens`), so a pathological document chunks in linear time.
 */
import { decode, encodeGenerator } from "gpt-tokenizer";
import { AS_TEXT, countTextTokens, cutAt, isSpace, tokenSpans } from "../tokens";

/** One chunk of a document; `text === source.slice(start, end)`. */
export interface Chunk {
  index: number;
  text: string;
  /** o200k_base tokens in `text`, as `countTextTokens` counts them. */
  tokens: number;
  /** Character offset of the chunk in the source text (inclusive). */
  start: number;
  /** Character offset of the chunk's end in the source text (exclusive). */
  end: number;
}

/** How to cut a document. */
export interface ChunkOptions {
  /** Upper bound on each chunk's tokens; at least 16. */
  maxTokens: number;
  /** Tokens each chunk repeats from the end of the one before, about; less than half of `maxTokens`. */
  overlapTokens: number;
}

const enum Boundary {
  None = 0,
  Word = 1,
  Sentence = 2,
  Paragraph = 3,
}

/**
 * The text cut into the tokenizer's pieces: piece `i` is `text.slice(starts[i], starts[i + 1])` and has
 * `cum[i + 1] - cum[i]` tokens. All three arrays end with an entry for the end of the text.
 */
interface Pieces {
  starts: number[];
  cum: number[];
  /** The kind of boundary at each piece's start. */
  boundary: Uint8Array;
}

/**
 * Cuts `text` into chunks of at most `maxTokens` tokens, consecutive chunks overlapping by about
 * `overlapTokens`. Chunks break at a paragraph if one falls in the back half of the budget, else at a line or
 * sentence end, else between words; whitespace at a chunk's edges is left out. Whitespace-only text gives `[]`.
 *
 * @throws RangeError when `maxTokens` is not an integer ≥ 16 or `overlapTokens` not an integer in
 *   [0, maxTokens / 2).
 */
export function chunkText(text: string, options: ChunkOptions): Chunk[] {
  const { maxTokens, overlapTokens } = options;
  if (!Number.isInteger(maxTokens) || maxTokens < 16) {
    throw new RangeError(`maxTokens must be an integer of at least 16, got ${maxTokens}`);
  }
  if (!Number.isInteger(overlapTokens) || overlapTokens < 0 || overlapTokens >= maxTokens / 2) {
    throw new RangeError(`overlapTokens must be an integer in [0, maxTokens / 2), got ${overlapTokens}`);
  }

  const pieces = toPieces(text, Math.floor(maxTokens / 4));
  const n = pieces.starts.length - 1;
  const chunks: Chunk[] = [];
  let first = 0;
  let previousEnd = 0;
  while (first < n) {
    const { end, chunk } = nextChunk(text, pieces, first, previousEnd, maxTokens);
    if (chunk) chunks.push({ index: chunks.length, ...chunk });
    if (end === n) break;
    first = overlapStart(pieces, first, end, overlapTokens);
    previousEnd = end;
  }
  return chunks;
}

/**
 * The chunk that starts at piece `first` and ends past piece `floor` (where the previous chunk ended), and the
 * piece it ends before. Pieces tokenized together can count differently than apart (a chunk's first word loses
 * its leading space, for one), so the budget shrinks by the excess until the chunk's own count fits.
 */
function nextChunk(
  text: string,
  pieces: Pieces,
  first: number,
  floor: number,
  maxTokens: number,
): { end: number; chunk: Omit<Chunk, "index"> | undefined } {
  const { starts, cum } = pieces;
  const n = starts.length - 1;
  for (let budget = maxTokens; ; ) {
    let last = first + 1;
    while (last < n && cum[last + 1]! - cum[first]! <= budget) last++;
    const end = last === n ? n : bestBreak(pieces, first, Math.max(first, floor), last, budget);
    const chunk = trimmedSlice(text, starts[first]!, starts[end]!);
    if (!chunk || chunk.tokens <= maxTokens || last === first + 1) return { end, chunk };
    budget -= chunk.tokens - maxTokens;
  }
}

/**
 * The piece before which the chunk from piece `first` should end, given it may run up to piece `last`: the
 * strongest boundary in the back half of the budget, latest first, and always past `floor`.
 */
function bestBreak({ cum, boundary }: Pieces, first: number, floor: number, last: number, budget: number): number {
  const halfFull = cum[first]! + budget / 2;
  let best = last;
  let bestKind = Boundary.None;
  for (let i = last; i > floor; i--) {
    const kind = boundary[i]!;
    if (cum[i]! < halfFull) {
      // Only a chunk that would otherwise end mid-word may come out less than half full.
      if (bestKind === Boundary.None && kind !== Boundary.None) return i;
      continue;
    }
    if (kind > bestKind) {
      best = i;
      bestKind = kind;
      if (kind === Boundary.Paragraph) break;
    }
  }
  return best;
}

/** The first piece of the chunk after one ending before piece `end`: about `overlapTokens` back, at a word. */
function overlapStart({ cum, boundary }: Pieces, first: number, end: number, overlapTokens: number): number {
  let next = end;
  while (next - 1 > first && cum[end]! - cum[next - 1]! <= overlapTokens) next--;
  while (next < end && boundary[next]! < Boundary.Word) next++;
  return next;
}

function trimmedSlice(text: string, from: number, to: number): Omit<Chunk, "index"> | undefined {
  let start = from;
  let end = to;
  while (start < end && isSpace(text.charCodeAt(start))) start++;
  while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
  if (start === end) return undefined;
  const slice = text.slice(start, end);
  return { text: slice, tokens: countTextTokens(slice), start, end };
}

function toPieces(text: string, maxPieceTokens: number): Pieces {
  const boundary = classifyPositions(text);
  const starts: number[] = [];
  const cum: number[] = [0];
  const push = (start: number, tokens: number) => {
    starts.push(start);
    cum.push(cum[cum.length - 1]! + tokens);
  };
  for (const [from, to] of tokenSpans(text)) {
    let offset = from;
    for (const tokens of encodeGenerator(text.slice(from, to), AS_TEXT)) {
      // Each yield is one pre-tokenized piece, whole characters, so its decoded length is its length in `text`.
      const length = decode(tokens).length;
      if (tokens.length <= maxPieceTokens) push(offset, tokens.length);
      else splitPiece(text, offset, offset + length, maxPieceTokens, push);
      offset += length;
    }
    if (offset !== to) throw new Error(`tokenizer pieces cover ${offset - from} of ${to - from} characters`);
  }
  starts.push(text.length);
  return { starts, cum, boundary: Uint8Array.from(starts, (p) => boundary[p]!) };
}

/** Cuts a piece too big to pack well (a long word or number) into slices that are small whatever the script. */
function splitPiece(
  text: string,
  from: number,
  to: number,
  maxPieceTokens: number,
  push: (start: number, tokens: number) => void,
) {
  // A UTF-16 code unit is at most 3 UTF-8 bytes, and a token at least one byte.
  const width = Math.max(2, Math.floor(maxPieceTokens / 3));
  for (let start = from; start < to; ) {
    const end = cutAt(text, start, Math.min(start + width, to));
    push(start, countTextTokens(text.slice(start, end)));
    start = end;
  }
}

/**
 * The boundary kind at every offset of `text` (length + 1 entries): offsets inside or at the edges of a run of
 * whitespace are word boundaries, upgraded to sentence when the run holds a line break or follows a sentence's
 * end, and to paragraph when it holds a blank line. Offsets inside words are {@link Boundary.None}.
 */
function classifyPositions(text: string): Uint8Array {
  const kinds = new Uint8Array(text.length + 1);
  for (const run of text.matchAll(/\s+/g)) {
    const start = run.index;
    const end = start + run[0].length;
    const kind = /\n[^\S\n]*\n/.test(run[0])
      ? Boundary.Paragraph
      : run[0].includes("\n") || endsSentence(text, start)
        ? Boundary.Sentence
        : Boundary.Word;
    kinds.fill(kind, start, end + 1);
  }
  return kinds;
}

/** Whether `text` ends a sentence just before `offset`: . ! ? or …, possibly inside closing quotes or brackets. */
function endsSentence(text: string, offset: number): boolean {
  let i = offset - 1;
  while (i >= 0 && `"')]}”’»`.includes(text[i]!)) i--;
  return i >= 0 && ".!?…".includes(text[i]!);
}
