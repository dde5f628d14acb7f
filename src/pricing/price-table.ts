/**
 * The table of models Tranche knows the price and limits of: the built-in `prices.json`, with an
 * install's own file (`LLM_PRICES_FILE`, same format) laid over it entry by entry.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import builtin from "./prices.json";

const perMtok = z.number().nonnegative().finite();

/** USD per million tokens; what a batch's `analysis.price` may set. */
export const priceSchema = z.object({
  input_per_mtok: perMtok,
  /** Input tokens the provider served from its prompt cache. Absent: billed as ordinary input. */
  cached_input_per_mtok: perMtok.optional(),
  output_per_mtok: perMtok,
  /** Input written to the prompt cache (Anthropic bills it above the input rate). Absent: the input rate. */
  cache_write_per_mtok: perMtok.optional(),
});
export type Price = z.infer<typeof priceSchema>;

export const modelEntrySchema = priceSchema.extend({
  id: z.string().min(1),
  provider: z.string().min(1),
  /** Other names of the same model (dated snapshots, `-latest` aliases). */
  aliases: z.array(z.string().min(1)).default([]),
  /** The Batch API's prices, where the vendor has one. */
  batch: z.object({ input_per_mtok: perMtok, output_per_mtok: perMtok }).optional(),
  context_tokens: z.number().int().positive().optional(),
  max_output_tokens: z.number().int().positive().optional(),
  /** When the entry was last compared with its source (YYYY-MM-DD). */
  checked_at: z.iso.date(),
  source: z.string().min(1),
});
export type ModelEntry = z.infer<typeof modelEntrySchema>;

export const priceFileSchema = z.object({ models: z.array(modelEntrySchema) });

/** Models by every name they go by (lower case). */
export interface PriceTable {
  readonly entries: readonly ModelEntry[];
  lookup(model: string): ModelEntry | undefined;
}

export class PriceFileError extends Error {
  constructor(file: string, problems: string[]) {
    super(`price file ${file} is not valid:\n  ${problems.join("\n  ")}`);
    this.name = "PriceFileError";
  }
}

/** A dated snapshot suffix: `-2024-08-06` (OpenAI) or `-20241022` (Anthropic). */
const SNAPSHOT = /-(\d{4}-\d{2}-\d{2}|\d{8})$/;

/** Builds a table; later entries replace earlier ones of the same id (and take their names). */
export function createPriceTable(...layers: ModelEntry[][]): PriceTable {
  const byId = new Map<string, ModelEntry>();
  for (const layer of layers) for (const entry of layer) byId.set(entry.id.toLowerCase(), entry);
  const byName = new Map<string, ModelEntry>();
  for (const entry of byId.values()) {
    for (const alias of entry.aliases) byName.set(alias.toLowerCase(), entry);
  }
  // Ids win over aliases, so an install's own entry for a dated snapshot is the one used.
  for (const [id, entry] of byId) byName.set(id, entry);

  const find = (name: string): ModelEntry | undefined => {
    const exact = byName.get(name);
    if (exact) return exact;
    const undated = name.replace(SNAPSHOT, "");
    return undated === name ? undefined : byName.get(undated);
  };
  return {
    entries: [...byId.values()],
    lookup(model) {
      const name = model.trim().toLowerCase();
      // Routers (OpenRouter, LiteLLM) name models `vendor/model`.
      return find(name) ?? (name.includes("/") ? find(name.slice(name.lastIndexOf("/") + 1)) : undefined);
    },
  };
}

/** Reads and validates a price file; throws a `PriceFileError` naming each bad field. */
export function readPriceFile(file: string): ModelEntry[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new PriceFileError(file, [err instanceof Error ? err.message : String(err)]);
  }
  const parsed = priceFileSchema.safeParse(raw);
  if (!parsed.success) throw new PriceFileError(file, parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`));
  return parsed.data.models;
}

/** The built-in entries, validated like any price file. */
export const BUILTIN_MODELS: ModelEntry[] = priceFileSchema.parse(builtin).models;

/** The built-in table, with `file` (an install's `LLM_PRICES_FILE`) laid over it. */
export function loadPriceTable(file?: string): PriceTable {
  return file ? createPriceTable(BUILTIN_MODELS, readPriceFile(file)) : createPriceTable(BUILTIN_MODELS);
}
