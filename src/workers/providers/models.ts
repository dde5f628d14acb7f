/**
 * Which provider and model an analysis runs on, from the batch's choice and the configuration.
 * Apart from the providers themselves so that the store (which keys the result cache by them)
 * can tell without loading any SDK.
 */
import type { ProviderKind } from "../../vocabulary";

/** Models used when neither the batch nor `LLM_MODEL` names one. */
export const DEFAULT_MODELS = { openai: "gpt-4o-mini", anthropic: "claude-3-5-haiku-latest" } as const;

/** The offline analyzer's model name (it has one model, whatever the batch names). */
export const LOCAL_MODEL = "tranche-local";

/** The messages API requires a ceiling on the answer; this one is used when the batch sets none. */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;

export interface ProviderChoiceConfig {
  LLM_PROVIDER?: ProviderKind;
  OPENAI_API_KEY?: string;
  OPENAI_BASE_URL?: string;
  LLM_MODEL?: string;
}

/** The batch's provider, else `LLM_PROVIDER`, else OpenAI when it is configured, else the offline analyzer. */
export function providerKindFor(config: ProviderChoiceConfig, chosen?: ProviderKind): ProviderKind {
  return chosen ?? config.LLM_PROVIDER ?? (config.OPENAI_API_KEY || config.OPENAI_BASE_URL ? "openai" : "local");
}

/** The model a provider of `kind` uses when the batch names none. */
export function defaultModelFor(config: ProviderChoiceConfig, kind: ProviderKind): string {
  return kind === "local" ? LOCAL_MODEL : (config.LLM_MODEL ?? DEFAULT_MODELS[kind]);
}
