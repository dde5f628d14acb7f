/**
 * Token counting that stays linear in the text's length, whatever the text.
 *
 * gpt-tokenizer (o200k_base) runs byte-pair merging over each pre-tokenized piece, and its merging is
 * quadratic in a piece's length: ordinary words are short, but a run without spaces can be one piece
 * of any length — 50,000 CJK characters take about 30 s, 50,000 letters over 2 s, and a document or a
 * model's answer may be nothing else. So every run of spaces or of non-spaces longer than
 * {@link LONG_RUN} characters is tokenized in slices of at most that length, cut where the tokenizer
 * would cut a piece when there is such a place. Text without long runs counts exactly as gpt-tokenizer
 * counts it; a run of letters alone counts about 1 % high (a token may end at a slice's edge that would
 * have spanned it).
 */
import { countTokens } from "gpt-tokenizer";

/** Runs longer than this are tokenized in slices of this length. */
export const LONG_RUN = 32;

// A text may legitimately contain "<|endoftext|>"; here it is text, not a control token.
export const AS_TEXT = { disallowedSpecial: new Set<string>() };

/** o200k_base tokens in `text`, in linear time (see the module comment). */
export function countTextTokens(text: string): number {
  let tokens = 0;
  for (const [from, to] of tokenSpans(text)) tokens += countTokens(text.slice(from, to), AS_TEXT);
  return tokens;
}

/**
 * Spans of `text` to tokenize separately, in order and covering it: the text between long runs as one
 * span, and each long run in slices of at most {@link LONG_RUN} (never splitting a surrogate pair).
 */
export function* tokenSpans(text: string): Generator<[number, number]> {
  let spanStart = 0;
  let runStart = 0;
  for (let i = 1; i <= text.length; i++) {
    if (i < text.length && isSpace(text.charCodeAt(i)) === isSpace(text.charCodeAt(i - 1))) continue;
    if (i - runStart > LONG_RUN) {
      // The tokenizer gives a word the one space or tab before it (and a run of spaces keeps its last
      // one for the word after it), so the cut moves by that character.
      const from = runStart > spanStart && isSpace(text.charCodeAt(runStart - 1)) && !isLineBreak(text.charCodeAt(runStart - 1)) ? runStart - 1 : runStart;
      const to = i < text.length && isSpace(text.charCodeAt(i - 1)) && !isLineBreak(text.charCodeAt(i - 1)) ? i - 1 : i;
      if (from > spanStart) yield [spanStart, from];
      for (let start = from; start < to; ) {
        const end = to - start <= LONG_RUN ? to : sliceEnd(text, start);
        yield [start, end];
        start = end;
      }
      spanStart = to;
    }
    runStart = i;
  }
  if (spanStart < text.length) yield [spanStart, text.length];
}

const WORDLIKE = /[\p{L}\p{N}\p{M}']/u;

/**
 * Where a slice of a long run that starts at `start` ends: after its last letter or digit followed by
 * punctuation, where the tokenizer would cut a piece too (JSON, URLs and code keep their exact counts),
 * or else after {@link LONG_RUN} characters.
 */
function sliceEnd(text: string, start: number): number {
  for (let end = start + LONG_RUN; end > start; end--) {
    if (WORDLIKE.test(text[end - 1]!) && !WORDLIKE.test(text[end]!)) return end;
  }
  return cutAt(text, start, start + LONG_RUN);
}

/** `end`, or one less if that would split a surrogate pair (but never back to `start`). */
export function cutAt(text: string, start: number, end: number): number {
  const code = text.charCodeAt(end - 1);
  return end < text.length && end - 1 > start && code >= 0xd800 && code <= 0xdbff ? end - 1 : end;
}

function isLineBreak(code: number): boolean {
  return code === 0x0a || code === 0x0d;
}

/** JavaScript's `\s`, without a regular expression per character. */
export function isSpace(code: number): boolean {
  return (
    (code >= 0x09 && code <= 0x0d) ||
    code === 0x20 ||
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}
