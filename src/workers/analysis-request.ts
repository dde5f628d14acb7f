/**
 * One document's analysis request, built from the batch's analysis definition and pricing. Staging
 * plans the document's cost from the very request the analysis worker later sends, so the estimate
 * and the budget's reservations count exactly the prompts that go out.
 */
import type { BatchPricing } from "../pricing";
import type { AnalysisInput } from "../server/http-schemas";
import type { AnalysisRequest } from "./providers/provider";

export function analysisRequest(
  analysis: AnalysisInput,
  pricing: BatchPricing,
  documentName: string,
  chunks: { index: number; text: string }[],
): AnalysisRequest {
  return {
    instructions: analysis.instructions,
    outputSchema: analysis.output_schema,
    model: analysis.model,
    temperature: analysis.temperature,
    maxTokens: analysis.max_tokens,
    ...(pricing.contextTokens !== null && { contextTokens: pricing.contextTokens }),
    ...(pricing.maxOutputTokens !== null && { maxOutputTokens: pricing.maxOutputTokens }),
    documentName,
    chunks,
  };
}
