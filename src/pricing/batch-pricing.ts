/**
 * What a batch's analysis runs on and costs, resolved once from its analysis definition and the
 * install's configuration: the provider, the model, its price and limits, and the ceiling on each
 * answer. The store prices the estimate and the budget's reservations with it, staging plans each
 * document with it and the analysis worker prices what the provider billed with it, so all three agree.
 */
import type { AnalysisMode, ProviderKind } from "../vocabulary";
// The providers' defaults only: pricing runs in every process, and an API process loads no provider SDK.
import { ANTHROPIC_DEFAULT_MAX_TOKENS, DEFAULT_MODELS, LOCAL_MODEL, providerKindFor as providerKind } from "../workers/providers/models";
import { priceFor, type ModelInfo } from "./cost";
import type { Price, PriceTable } from "./price-table";

/** The part of a batch's analysis definition that decides its model and price. */
export interface PricedAnalysis {
  provider?: ProviderKind;
  model?: string;
  max_tokens?: number;
  price?: Price;
  context_tokens?: number;
  output_schema?: unknown;
  /** `batch`: the provider's Batch API, at its batch prices and without re-asks. */
  mode?: AnalysisMode;
}

export interface BatchPricing extends ModelInfo {
  provider: ProviderKind;
  /** False for the offline analyzer: nobody bills it, everything costs 0. */
  billed: boolean;
  /** The most tokens one answer may have: `max_tokens`, else what the provider is sent or allows; null when unknown. */
  answerCeiling: number | null;
  /** Re-asks after an invalid answer (only with an output schema, which is what is checked). */
  reasks: number;
}

export type PricingResolver = (analysis: PricedAnalysis) => BatchPricing;

export interface PricingConfig {
  LLM_PROVIDER?: ProviderKind;
  OPENAI_API_KEY?: string;
  OPENAI_BASE_URL?: string;
  LLM_MODEL?: string;
  LLM_OUTPUT_RETRIES: number;
}

export function createPricingResolver(config: PricingConfig, table: PriceTable): PricingResolver {
  return (analysis) => {
    const provider = analysis.provider ?? providerKind(config);
    // The batch lane has no re-asks: an answer that does not match the schema fails its task.
    const reasks = analysis.output_schema === undefined || analysis.mode === "batch" ? 0 : config.LLM_OUTPUT_RETRIES;
    if (provider === "local") {
      return {
        model: LOCAL_MODEL, price: { input_per_mtok: 0, output_per_mtok: 0 }, contextTokens: null, maxOutputTokens: null,
        source: "the offline analyzer", checkedAt: null, note: "the offline analyzer costs nothing", provider, billed: false, answerCeiling: 0, reasks: 0,
      };
    }
    const model = analysis.model ?? config.LLM_MODEL ?? DEFAULT_MODELS[provider];
    const info = priceFor(model, table, {
      ...(analysis.mode === "batch" && { lane: "batch" as const }),
      ...(analysis.price && { price: analysis.price }),
      ...(analysis.context_tokens !== undefined && { contextTokens: analysis.context_tokens }),
    });
    // OpenAI is sent no ceiling when the batch sets none (the model's own applies); Anthropic is sent one.
    const answerCeiling = analysis.max_tokens ?? (provider === "anthropic" ? ANTHROPIC_DEFAULT_MAX_TOKENS : info.maxOutputTokens);
    return { ...info, provider, billed: true, answerCeiling, reasks };
  };
}
