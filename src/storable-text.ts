/**
 * Text PostgreSQL can store. Its `text` and `jsonb` refuse U+0000, and UTF-8 cannot encode a lone
 * surrogate; either in one value fails the whole transaction it is written in. Documents and LLM
 * answers bring both, so what they give is cleaned before it reaches a report.
 */

// eslint-disable-next-line no-control-regex -- matching NUL is the point
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** `text` without NUL characters, and with each lone surrogate replaced by U+FFFD. */
export function storableText(text: string): string {
  return text.replace(UNSTORABLE, (c) => (c === "\u0000" ? "" : "\uFFFD"));
}

/** A JSON value with every string in it (object keys included) made {@link storableText}. */
export function storableJson(value: unknown): unknown {
  if (typeof value === "string") return storableText(value);
  if (Array.isArray(value)) return value.map(storableJson);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [storableText(k), storableJson(v)]));
  }
  return value;
}
