/**
 * Which provider the analysis worker uses, from the configuration: OpenAI when asked for or when
 * OpenAI credentials or a compatible server are configured, Anthropic when asked for, and otherwise
 * the offline analyzer, so that a fresh install works without any key.
 */
import type { Logger } from "pino";
import { createAnthropicProvider } from "./anthropic";
import type { SdkProviderOptions } from "./conversation";
import { createLocalProvider } from "./local";
import { defaultModelFor, providerKindFor } from "./models";
import { createOpenAIProvider } from "./openai";
import type { Provider } from "./provider";
import type { RateLimiter } from "./rate-limiter";
import type { ProviderKind } from "../../vocabulary";

export * from "./provider";
export { ANTHROPIC_DEFAULT_MAX_TOKENS } from "./anthropic";
export { LOCAL_MODEL } from "./models";
export { createRateLimiter, type RateLimiter, type RateLimiterOptions } from "./rate-limiter";
export { DEFAULT_MODELS } from "./models";

/** The environment variables that choose and tune the provider. */
export interface ProviderConfig {
  LLM_PROVIDER?: "openai" | "anthropic" | "local";
  OPENAI_API_KEY?: string;
  OPENAI_BASE_URL?: string;
  ANTHROPIC_API_KEY?: string;
  /** Default model; a batch's own model overrides it. */
  LLM_MODEL?: string;
  LLM_TIMEOUT_MS: number;
  LLM_MAX_RETRIES: number;
  LLM_OUTPUT_RETRIES: number;
}

/** Shared by every provider the process creates. */
export interface ProviderDeps {
  limiter?: RateLimiter;
  logger?: Logger;
  /** Told of every HTTP call to the provider (metrics). */
  onRequest?: SdkProviderOptions["onRequest"];
  /** Where answers are checked off the main thread (a shared pool when absent). */
  answers?: SdkProviderOptions["answers"];
}

/** Which provider the configuration asks for (see the module comment for the rules). */
export function providerKind(config: Pick<ProviderConfig, "LLM_PROVIDER" | "OPENAI_API_KEY" | "OPENAI_BASE_URL">): ProviderKind {
  return providerKindFor(config);
}

/** The provider the configuration asks for (see the module comment for the rules). */
export function selectProvider(config: ProviderConfig, deps: ProviderDeps = {}): Provider {
  const kind = providerKind(config);
  if (kind === "local") return createLocalProvider();
  const common = {
    timeoutMs: config.LLM_TIMEOUT_MS,
    maxRetries: config.LLM_MAX_RETRIES,
    outputRetries: config.LLM_OUTPUT_RETRIES,
    ...(deps.limiter && { limiter: deps.limiter }),
    ...(deps.logger && { logger: deps.logger }),
    ...(deps.onRequest && { onRequest: deps.onRequest }),
    ...(deps.answers && { answers: deps.answers }),
  };
  if (kind === "anthropic") {
    return createAnthropicProvider({
      ...common,
      model: defaultModelFor(config, "anthropic"),
      ...(config.ANTHROPIC_API_KEY && { apiKey: config.ANTHROPIC_API_KEY }),
    });
  }
  return createOpenAIProvider({
    ...common,
    model: defaultModelFor(config, "openai"),
    ...(config.OPENAI_API_KEY && { apiKey: config.OPENAI_API_KEY }),
    ...(config.OPENAI_BASE_URL && { baseURL: config.OPENAI_BASE_URL }),
  });
}
