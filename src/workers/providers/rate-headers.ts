/**
 * What a provider's response headers say about its rate limits: OpenAI's `x-ratelimit-*`
 * (durations like `6m0s`) and Anthropic's `anthropic-ratelimit-*` (RFC 3339 reset times).
 */
import { parseRetryAfter } from "./retry";

/** Any of these may be absent. Resets are milliseconds from now. */
export interface RateObservation {
  limitRequests?: number;
  limitTokens?: number;
  remainingRequests?: number;
  remainingTokens?: number;
  resetRequestsMs?: number;
  resetTokensMs?: number;
  retryAfterMs?: number;
}

/** `1s`, `6m0s`, `20ms`, `1h2m3.5s` → milliseconds. */
export function parseDuration(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  const parts = [...value.trim().matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== value.trim()) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
  return Math.ceil(parts.reduce((ms, p) => ms + Number(p[1]) * unit[p[2] as keyof typeof unit], 0));
}

const int = (value: string | null | undefined): number | undefined => {
  const n = Number(value ?? undefined);
  return value != null && value !== "" && Number.isFinite(n) && n >= 0 ? Math.floor(n) : undefined;
};

const until = (value: string | null | undefined, now: number): number | undefined => {
  const at = Date.parse(value ?? "");
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
};

/** Reads whichever vendor's headers are present; an empty object when none are. */
export function readRateHeaders(headers: Headers | undefined, now = Date.now()): RateObservation {
  if (!headers) return {};
  const get = (name: string) => headers.get(name);
  // Anthropic's combined token limit is the one in force; the input-token one stands in for it when alone.
  const anthropicTokens = get("anthropic-ratelimit-tokens-limit") != null ? "tokens" : "input-tokens";
  const observed: RateObservation = {
    limitRequests: int(get("x-ratelimit-limit-requests")) ?? int(get("anthropic-ratelimit-requests-limit")),
    limitTokens: int(get("x-ratelimit-limit-tokens")) ?? int(get(`anthropic-ratelimit-${anthropicTokens}-limit`)),
    remainingRequests: int(get("x-ratelimit-remaining-requests")) ?? int(get("anthropic-ratelimit-requests-remaining")),
    remainingTokens: int(get("x-ratelimit-remaining-tokens")) ?? int(get(`anthropic-ratelimit-${anthropicTokens}-remaining`)),
    resetRequestsMs: parseDuration(get("x-ratelimit-reset-requests")) ?? until(get("anthropic-ratelimit-requests-reset"), now),
    resetTokensMs: parseDuration(get("x-ratelimit-reset-tokens")) ?? until(get(`anthropic-ratelimit-${anthropicTokens}-reset`), now),
    retryAfterMs: parseRetryAfter(headers, now),
  };
  return Object.fromEntries(Object.entries(observed).filter(([, v]) => v !== undefined)) as RateObservation;
}
