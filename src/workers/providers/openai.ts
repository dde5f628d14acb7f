/**
 * OpenAI (or any OpenAI-compatible server, through `baseURL`) over the official SDK's chat completions.
 * The SDK's retries are off: `converse` applies ours.
 */
import OpenAI, { APIConnectionError, APIError } from "openai";
import type { ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions";
import pino from "pino";
import { type Prompt, type Reply, sdkLogger, sdkProvider, type SdkProviderOptions } from "./conversation";
import { PermanentProviderError, type Provider, type ProviderError } from "./provider";
import { connectionFailure, httpFailure } from "./retry";

export type OpenAIProviderOptions = SdkProviderOptions;

/** A provider that sends each analysis as one chat completion (plus re-asks). */
export function createOpenAIProvider(opts: OpenAIProviderOptions): Provider {
  const log = (opts.logger ?? pino({ level: "silent" })).child({ provider: "openai" });
  const baseURL = opts.baseURL ?? process.env.OPENAI_BASE_URL;
  // Local OpenAI-compatible servers need no key, but the SDK refuses to start without one.
  const apiKey = opts.apiKey ?? process.env.OPENAI_API_KEY ?? (baseURL ? "unused" : undefined);
  const client = new OpenAI({
    ...(apiKey !== undefined && { apiKey }),
    ...(baseURL !== undefined && { baseURL }),
    maxRetries: 0,
    timeout: opts.timeoutMs,
    logger: sdkLogger(log),
    logLevel: "warn",
  });

  async function send(prompt: Prompt): Promise<Reply> {
    const body: ChatCompletionCreateParamsNonStreaming = {
      model: prompt.model,
      messages: [{ role: "system", content: prompt.system }, ...prompt.turns],
      ...(prompt.schema && {
        response_format: { type: "json_schema", json_schema: { name: "analysis", schema: prompt.schema, strict: false } },
      }),
      ...(prompt.temperature !== undefined && { temperature: prompt.temperature }),
      ...(prompt.maxTokens !== undefined && { max_completion_tokens: prompt.maxTokens }),
    };
    const { data: completion, response } = await client.chat.completions.create(body, { signal: prompt.signal }).withResponse();
    const choice = completion.choices[0];
    if (choice === undefined) throw new PermanentProviderError("openai answered with no choices");
    const usage = completion.usage;
    return {
      text: choice.message.content ?? "",
      model: completion.model,
      headers: response.headers,
      ...(usage && {
        inputTokens: usage.prompt_tokens,
        cachedInputTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
        outputTokens: usage.completion_tokens,
      }),
    };
  }

  return sdkProvider("openai", opts, log, send, classify);
}

function classify(err: unknown): ProviderError {
  if (err instanceof APIConnectionError) return connectionFailure(`openai: ${err.message}`, err);
  if (err instanceof APIError && err.status !== undefined) return httpFailure(err.status, err.headers, `openai: ${err.message}`, err);
  return new PermanentProviderError(`openai: ${err instanceof Error ? err.message : String(err)}`, undefined, err);
}
