/**
 * What history keeps of a request's context is bounded: a context whose JSON is over
 * `HISTORY_CONTEXT_MAX_BYTES` is stored as a marker with the first bytes of that JSON, so a
 * client cannot make every later read of the history (or the visualizer) carry megabytes.
 */

/** Most bytes of a context's JSON one history entry stores. */
export const HISTORY_CONTEXT_MAX_BYTES = 4096;

/** The marker a truncated context is stored as. */
export interface TruncatedContext {
  truncated: true;
  /** Size of the context's JSON as it was sent. */
  original_bytes: number;
  /** Its first bytes (cut at a character boundary). */
  preview: string;
}

export function boundHistoryContext<T>(context: T, maxBytes = HISTORY_CONTEXT_MAX_BYTES): T | TruncatedContext {
  if (context === undefined || context === null) return context;
  const json = JSON.stringify(context);
  const bytes = Buffer.byteLength(json, "utf8");
  if (bytes <= maxBytes) return context;
  // Leave room for the marker's own fields so the stored entry stays under the bound too.
  const room = Math.max(0, maxBytes - 128);
  let preview = Buffer.from(json, "utf8").subarray(0, room).toString("utf8");
  // A cut inside a multi-byte character leaves U+FFFD at the end; drop it.
  preview = preview.replace(/\uFFFD+$/, "");
  return { truncated: true, original_bytes: bytes, preview };
}
