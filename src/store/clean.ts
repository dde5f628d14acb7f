/**
 * Text PostgreSQL cannot store: a NUL character (refused in text and JSONB) and lone UTF-16
 * surrogates (refused in JSONB). Found before a group writes anything, so one bad
 * submission is refused on its own instead of failing every statement of its group.
 */
const NUL_CHAR = String.fromCharCode(0);
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const LONE_SURROGATE_ALL = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export function isStorableText(s: string): boolean {
  return !s.includes(NUL_CHAR) && !LONE_SURROGATE.test(s);
}

/** The path of the first string (or key) in `value` PostgreSQL would refuse, or null. */
export function findUnstorable(value: unknown, path = ""): string | null {
  if (typeof value === "string") return isStorableText(value) ? null : path || "value";
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnstorable(value[i], `${path}[${i}]`);
      if (found) return found;
    }
    return null;
  }
  if (value && typeof value === "object" && !Buffer.isBuffer(value)) {
    for (const [k, v] of Object.entries(value)) {
      const here = path ? `${path}.${k}` : k;
      if (!isStorableText(k)) return here;
      const found = findUnstorable(v, here);
      if (found) return found;
    }
  }
  return null;
}

/** `s` with NUL removed and lone surrogates replaced by U+FFFD. */
export function cleanText(s: string): string {
  return isStorableText(s) ? s : s.replaceAll(NUL_CHAR, "").replace(LONE_SURROGATE_ALL, "\ufffd");
}

/** A copy of `value` whose every string and key is storable (worker output is cleaned, not refused). */
export function cleanDeep<T>(value: T): T {
  if (typeof value === "string") return cleanText(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => cleanDeep(v)) as T;
  if (value && typeof value === "object" && !Buffer.isBuffer(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [cleanText(k), cleanDeep(v)])) as T;
  }
  return value;
}
