/** A batch API call's failure in the live lane's terms: bad credentials, worth retrying, or refused for good. */
import { APIConnectionError as AnthropicConnectionError, APIError as AnthropicError } from "@anthropic-ai/sdk";
import { APIConnectionError as OpenAIConnectionError, APIError as OpenAIError } from "openai";
import type { BatchProviderKind } from "../../vocabulary";
import { ProviderError } from "../providers/provider";
import { connectionFailure, httpFailure } from "../providers/retry";

export function classifyBatchError(kind: BatchProviderKind, err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  const message = `${kind} batch API: ${err instanceof Error ? err.message : String(err)}`;
  if (err instanceof OpenAIConnectionError || err instanceof AnthropicConnectionError) return connectionFailure(message, err);
  if ((err instanceof OpenAIError || err instanceof AnthropicError) && err.status !== undefined) return httpFailure(err.status, err.headers as Headers | undefined, message, err);
  return connectionFailure(message, err);
}
