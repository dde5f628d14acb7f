/**
 * Anthropic over the official SDK's messages API. The output schema is enforced the same way as for
 * any model: asked for in the system prompt, checked with Ajv, re-asked when wrong. The system prompt
 * is marked for Anthropic's prompt cache (which, unlike OpenAI's, is opt-in).
 * The SDK's retries are off: `converse` applies ours.
 */
import Anthropic, { APIConnectionError, APIError } from "@anthropic-ai/sdk";
import pino from "pino";
import { type Prompt, type Reply, sdkLogger, sdkProvider, type SdkProviderOptions } from "./conversation";
import { PermanentProviderError, type Provider, type ProviderError } from "./provider";
import { ANTHROPIC_DEFAULT_MAX_TOKENS } from "./models";
import { connectionFailure, httpFailure } from "./retry";

export { ANTHROPIC_DEFAULT_MAX_TOKENS };
const DEFAULT_MAX_TOKENS = ANTHROPIC_DEFAULT_MAX_TOKENS;

export type AnthropicProviderOptions = SdkProviderOptions;

/**
 * A provider that sends each analysis as one message exchange (plus re-asks).
 * The request's `temperature` is not sent: this SDK version's messages API has no such parameter.
 */
export function createAnthropicProvider(opts: AnthropicProviderOptions): Provider {
  const log = (opts.logger ?? pino({ level: "silent" })).child({ provider: "anthropic" });
  const client = new Anthropic({
    ...(opts.apiKey !== undefined && { apiKey: opts.apiKey }),
    ...(opts.baseURL !== undefined && { baseURL: opts.baseURL }),
    maxRetries: 0,
    timeout: opts.timeoutMs,
    logger: sdkLogger(log),
    logLevel: "warn",
  });

  async function send(prompt: Prompt): Promise<Reply> {
    const { data: message, response } = await client.messages
      .create(
        {
          model: prompt.model,
          // Marked for the prompt cache: the instructions are the same for every task of a batch.
          system: [{ type: "text", text: prompt.system, cache_control: { type: "ephemeral" } }],
          messages: prompt.turns,
          max_tokens: prompt.maxTokens ?? DEFAULT_MAX_TOKENS,
        },
        { signal: prompt.signal },
      )
      .withResponse();
    const usage = message.usage;
    const cacheRead = usage.cache_read_input_tokens ?? 0;
    const cacheWrite = usage.cache_creation_input_tokens ?? 0;
    return {
      text: message.content.flatMap((block) => (block.type === "text" ? [block.text] : [])).join(""),
      model: message.model,
      headers: response.headers,
      // Anthropic's input_tokens leaves out the cached and cache-written ones; ours counts every prompt token.
      inputTokens: usage.input_tokens + cacheRead + cacheWrite,
      cachedInputTokens: cacheRead,
      cacheWriteTokens: cacheWrite,
      outputTokens: usage.output_tokens,
    };
  }

  return sdkProvider("anthropic", opts, log, send, classify);
}

function classify(err: unknown): ProviderError {
  if (err instanceof APIConnectionError) return connectionFailure(`anthropic: ${err.message}`, err);
  if (err instanceof APIError && err.status !== undefined) return httpFailure(err.status, err.headers, `anthropic: ${err.message}`, err);
  return new PermanentProviderError(`anthropic: ${err instanceof Error ? err.message : String(err)}`, undefined, err);
}
