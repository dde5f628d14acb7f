/**
 * What a model costs and how much room it has, for one batch: the price table's entry under the
 * batch's own overrides, and the dollar cost of a provider's reported usage at that price.
 * An unknown model has no price: its cost is `null`, with a note saying why, never a guess.
 */
import type { AnalysisMode } from "../vocabulary";
import type { ModelEntry, Price, PriceTable } from "./price-table";

/** Tokens as the provider reported them. `inputTokens` includes the cached and cache-written ones. */
export interface TokenUsage {
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  /** Input written to the provider's prompt cache (Anthropic's `cache_creation_input_tokens`). */
  cacheWriteTokens?: number;
}

/** A batch's own settings, which win over the table. */
export interface ModelOverrides {
  price?: Price;
  contextTokens?: number;
  /** `batch`: the provider's Batch API prices (the table's `batch` entry), where the model has them. */
  lane?: AnalysisMode;
}

export interface ModelInfo {
  model: string;
  /** Null when the model is unknown and the batch set no price. */
  price: Price | null;
  contextTokens: number | null;
  maxOutputTokens: number | null;
  /** Where the price came from: the table entry's source, `analysis.price`, or null. */
  source: string | null;
  checkedAt: string | null;
  /** Why there is no price, when there is none. */
  note: string | null;
}

const priceOf = (e: ModelEntry): Price => ({
  input_per_mtok: e.input_per_mtok,
  output_per_mtok: e.output_per_mtok,
  ...(e.cached_input_per_mtok !== undefined && { cached_input_per_mtok: e.cached_input_per_mtok }),
  ...(e.cache_write_per_mtok !== undefined && { cache_write_per_mtok: e.cache_write_per_mtok }),
});

/** The price and limits `model` runs at, the batch's overrides first. */
export function priceFor(model: string, table: PriceTable, overrides: ModelOverrides = {}): ModelInfo {
  const entry = table.lookup(model);
  const price = overrides.price ?? (entry ? (overrides.lane === "batch" && entry.batch ? { ...entry.batch } : priceOf(entry)) : null);
  return {
    model,
    price,
    contextTokens: overrides.contextTokens ?? entry?.context_tokens ?? null,
    maxOutputTokens: entry?.max_output_tokens ?? null,
    source: overrides.price ? "analysis.price" : (entry?.source ?? null),
    checkedAt: overrides.price ? null : (entry?.checked_at ?? null),
    note: price ? null : `no price is known for model "${model}": set analysis.price or add it to LLM_PRICES_FILE`,
  };
}

/** USD for `usage` at `price`, or null without a price. Cached input at its own rate, when the price has one. */
export function costOf(usage: TokenUsage, price: Price | null): number | null {
  if (!price) return null;
  const cached = Math.min(usage.cachedInputTokens, usage.inputTokens);
  const written = Math.min(usage.cacheWriteTokens ?? 0, usage.inputTokens - cached);
  const plain = usage.inputTokens - cached - written;
  const micro =
    plain * price.input_per_mtok +
    cached * (price.cached_input_per_mtok ?? price.input_per_mtok) +
    written * (price.cache_write_per_mtok ?? price.input_per_mtok) +
    usage.outputTokens * price.output_per_mtok;
  // `micro` is in millionths of a dollar; rounded to a millionth of a cent against float noise.
  return Math.round(micro * 100) / 1e8;
}
