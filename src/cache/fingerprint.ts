/**
 * The analysis fingerprint: everything besides the document that decides a task's answer. Two
 * tasks of one tenant with the same fingerprint and the same document (its text and its name,
 * which the prompt carries) would send the provider the same request, so the second may take the
 * first's answer. Anything that changes the request changes the fingerprint, and the cache misses.
 */
import { createHash } from "node:crypto";
import type { AnalysisInput } from "../server/http-schemas";
import { defaultModelFor, LOCAL_MODEL, providerKindFor, type ProviderChoiceConfig } from "../workers/providers/models";

/**
 * The layout of the prompts (src/workers/providers/conversation.ts) and of the offline analyzer's
 * output. Bump it with any change to either: answers cached under the old layout stop matching.
 */
export const PROMPT_VERSION = 1;

/** What a fingerprint is made of, defaults resolved. */
export interface AnalysisTarget {
  provider: string;
  /** The server a compatible provider talks to (`OPENAI_BASE_URL`): another server may serve another model under the same name. */
  endpoint: string | null;
  model: string;
  instructions: string;
  outputSchema: Record<string, unknown> | null;
  temperature: number | null;
  maxTokens: number | null;
  /** The batch's own context window, which decides between one request and map-reduce. */
  contextTokens: number | null;
  /** How staging cut the text into the chunks the prompt is made of. */
  chunking: { maxTokens: number; overlapTokens: number };
}

/**
 * JSON with every object's keys in code-point order, at every depth (arrays keep their order):
 * two schemas that differ only in the order of their keys are one schema.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** sha256 (hex) of the target and the prompt version, canonically serialised. */
export function fingerprintOf(target: AnalysisTarget, promptVersion = PROMPT_VERSION): string {
  return createHash("sha256").update(canonicalJson({ prompt_version: promptVersion, ...target })).digest("hex");
}

/** The configuration the fingerprint of a batch depends on. */
export interface CacheKeyConfig extends ProviderChoiceConfig {
  CHUNK_MAX_TOKENS: number;
  CHUNK_OVERLAP_TOKENS: number;
}

/** Whether a batch takes part in the result cache (`analysis.cache`, default true). */
export function cacheEnabled(analysis: Pick<AnalysisInput, "cache">): boolean {
  return analysis.cache !== false;
}

/** The target a batch's tasks run on, resolved as the analysis worker resolves it. */
export function targetOf(analysis: AnalysisInput, config: CacheKeyConfig): AnalysisTarget {
  const provider = providerKindFor(config, analysis.provider);
  // The offline analyzer has one model and ignores the rest of the request but the instructions.
  const model = provider === "local" ? LOCAL_MODEL : (analysis.model ?? defaultModelFor(config, provider));
  return {
    provider,
    endpoint: provider === "openai" ? (config.OPENAI_BASE_URL ?? null) : null,
    model,
    instructions: analysis.instructions,
    outputSchema: analysis.output_schema ?? null,
    temperature: analysis.temperature ?? null,
    maxTokens: analysis.max_tokens ?? null,
    contextTokens: analysis.context_tokens ?? null,
    chunking: { maxTokens: config.CHUNK_MAX_TOKENS, overlapTokens: config.CHUNK_OVERLAP_TOKENS },
  };
}

/** A batch's fingerprint, or null when the batch keeps out of the cache (`analysis.cache: false`). */
export function batchFingerprint(analysis: AnalysisInput, config: CacheKeyConfig): string | null {
  return cacheEnabled(analysis) ? fingerprintOf(targetOf(analysis, config)) : null;
}
