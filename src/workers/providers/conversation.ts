/**
 * The part of an LLM analysis that does not depend on the SDK: prompts, the per-attempt timeout,
 * rate limiting, retries, and checking the output against the batch's JSON Schema with re-asks.
 * Each SDK-backed provider supplies only `send` (one HTTP call) and `classify` (its errors → ours).
 */
import type { ValidateFunction } from "ajv";
import { countTokens } from "gpt-tokenizer";
import type { Logger } from "pino";
import { compileOutputSchema } from "../../output-schema";
import {
  type AnalysisRequest,
  type AnalysisResult,
  InvalidOutputError,
  PermanentProviderError,
  type Provider,
  ProviderError,
} from "./provider";
import type { RateLimiter } from "./rate-limiter";
import { connectionFailure, DEFAULT_RETRY_POLICY, type RetryPolicy, withRetries } from "./retry";

/** What every SDK-backed provider is created with. */
export interface SdkProviderOptions {
  /** Defaults to the SDK's own environment variable (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`). */
  apiKey?: string;
  /** Defaults to the SDK's own environment variable (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`), then the vendor's API. */
  baseURL?: string;
  /** Used when the batch names no model. */
  model: string;
  /** Limit of each HTTP call; every retry gets a fresh one. */
  timeoutMs: number;
  maxRetries: number;
  /** Re-asks after an answer that is not JSON or does not match the schema. */
  outputRetries: number;
  limiter?: RateLimiter;
  logger?: Logger;
  /** First backoff ceiling (250 ms); tests shorten it. */
  baseDelayMs?: number;
  /** Highest backoff ceiling (20 s). */
  maxDelayMs?: number;
}

export interface Turn {
  role: "user" | "assistant";
  content: string;
}

/** Everything one HTTP call needs. */
export interface Prompt {
  model: string;
  system: string;
  turns: Turn[];
  schema?: Record<string, unknown>;
  temperature?: number;
  maxTokens?: number;
  /** Fires on the job's cancellation or this attempt's timeout. */
  signal: AbortSignal;
}

/** One answer; token counts are absent when the provider did not report usage. */
export interface Reply {
  text: string;
  model?: string;
  inputTokens?: number;
  outputTokens?: number;
}

export interface ConversationOptions {
  provider: string;
  /** Used when the request names no model. */
  model: string;
  timeoutMs: number;
  /** Re-asks after an answer that is not JSON or does not match the schema. */
  outputRetries: number;
  retry: RetryPolicy;
  limiter?: RateLimiter;
  logger: Logger;
  send(prompt: Prompt): Promise<Reply>;
  classify(err: unknown): ProviderError;
}

/** Wires one SDK's `send` and `classify` to `converse` with the options' policy. */
export function sdkProvider(
  name: string,
  opts: SdkProviderOptions,
  logger: Logger,
  send: ConversationOptions["send"],
  classify: ConversationOptions["classify"],
): Provider {
  const retry: RetryPolicy = {
    ...DEFAULT_RETRY_POLICY,
    maxRetries: opts.maxRetries,
    ...(opts.baseDelayMs !== undefined && { baseDelayMs: opts.baseDelayMs }),
    ...(opts.maxDelayMs !== undefined && { maxDelayMs: opts.maxDelayMs }),
  };
  const options: ConversationOptions = {
    provider: name,
    model: opts.model,
    timeoutMs: opts.timeoutMs,
    outputRetries: opts.outputRetries,
    retry,
    ...(opts.limiter && { limiter: opts.limiter }),
    logger,
    send,
    classify,
  };
  return { name, analyze: (req) => converse(req, options) };
}

/** Runs one analysis to a valid output, or fails with a `ProviderError` (or the signal's reason when cancelled). */
async function converse(req: AnalysisRequest, options: ConversationOptions): Promise<AnalysisResult> {
  const model = req.model ?? options.model;
  const validate = req.outputSchema === undefined ? undefined : compileSchema(req.outputSchema);
  const system = systemPrompt(req);
  const turns: Turn[] = [{ role: "user", content: userPrompt(req) }];
  const total = { inputTokens: 0, outputTokens: 0, attempts: 0 };
  for (let ask = 0; ; ask++) {
    const { reply, attempts } = await call(req, options, { model, system, turns: [...turns] });
    total.inputTokens += reply.inputTokens;
    total.outputTokens += reply.outputTokens;
    total.attempts += attempts;
    const result = { ...total, model: reply.model ?? model, provider: options.provider };
    if (validate === undefined) return { ...result, output: reply.text };
    const parsed = parseOutput(reply.text, validate);
    if ("value" in parsed) return { ...result, output: parsed.value };
    if (ask >= options.outputRetries) {
      throw new InvalidOutputError(`output still invalid after ${ask} re-ask(s): ${parsed.problems.join("; ")}`, reply.text, parsed.problems);
    }
    options.logger.info({ problems: parsed.problems, ask: ask + 1 }, "output invalid; asking again");
    turns.push({ role: "assistant", content: reply.text }, { role: "user", content: reaskPrompt(parsed.problems) });
  }
}

type CountedReply = Reply & { inputTokens: number; outputTokens: number };

async function call(
  req: AnalysisRequest,
  options: ConversationOptions,
  prompt: Omit<Prompt, "signal">,
): Promise<{ reply: CountedReply; attempts: number }> {
  const promptTokens = countTokens([prompt.system, ...prompt.turns.map((t) => t.content)].join("\n"));
  const estimate = promptTokens + (req.maxTokens ?? 0);
  const limiter = options.limiter;
  const { value, attempts } = await withRetries(
    async () => {
      const timeout = AbortSignal.timeout(options.timeoutMs);
      const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout;
      let reply: Reply;
      try {
        reply = await options.send({
          ...prompt,
          ...(req.outputSchema && { schema: req.outputSchema }),
          ...(req.temperature !== undefined && { temperature: req.temperature }),
          ...(req.maxTokens !== undefined && { maxTokens: req.maxTokens }),
          signal,
        });
      } catch (err) {
        if (req.signal?.aborted) throw req.signal.reason;
        if (timeout.aborted) throw connectionFailure(`${options.provider} call timed out after ${options.timeoutMs} ms`, err);
        // A 200 whose body is not JSON: a proxy or the connection broke mid-answer. By name, as fetch's
        // SyntaxError may come from another realm (Jest's sandbox).
        if ((err as { name?: unknown } | null)?.name === "SyntaxError") {
          throw connectionFailure(`${options.provider} answered with an unreadable body`, err);
        }
        throw err instanceof ProviderError ? err : options.classify(err);
      }
      const counted = {
        ...reply,
        inputTokens: reply.inputTokens ?? promptTokens,
        outputTokens: reply.outputTokens ?? countTokens(reply.text),
      };
      await limiter?.record(counted.inputTokens + counted.outputTokens, estimate);
      return counted;
    },
    {
      policy: options.retry,
      logger: options.logger,
      ...(req.signal && { signal: req.signal }),
      ...(limiter && { beforeAttempt: () => limiter.acquire(estimate, req.signal) }),
    },
  );
  return { reply: value, attempts };
}

/** The instructions, plus the schema and the demand for bare JSON when there is a schema. */
function systemPrompt(req: Pick<AnalysisRequest, "instructions" | "outputSchema">): string {
  if (req.outputSchema === undefined) return req.instructions;
  return (
    `${req.instructions}\n\nAnswer with a single JSON value that matches the JSON Schema below, and nothing else: ` +
    `no prose, no Markdown code fences.\n\nJSON Schema:\n${JSON.stringify(req.outputSchema)}`
  );
}

/** The document's name and its chunks in order. */
function userPrompt(req: Pick<AnalysisRequest, "documentName" | "chunks">): string {
  const text = [...req.chunks].sort((a, b) => a.index - b.index).map((c) => c.text).join("\n\n");
  return `Document: ${req.documentName}\n\n${text}`;
}

function reaskPrompt(problems: string[]): string {
  return `Your answer was rejected: ${problems.join("; ")}. Answer again with only the corrected JSON.`;
}

/** Parses (tolerating a Markdown fence, which models add despite being told not to) and validates. */
function parseOutput(text: string, validate: ValidateFunction): { value: unknown } | { problems: string[] } {
  const fenced = /^```(?:json)?\s*\n([\s\S]*?)\n?```$/i.exec(text.trim());
  let value: unknown;
  try {
    value = JSON.parse(fenced?.[1] ?? text);
  } catch (err) {
    return { problems: [`not valid JSON (${err instanceof Error ? err.message : String(err)})`] };
  }
  if (validate(value)) return { value };
  return { problems: (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? "is invalid"}`) };
}

const MAX_CACHED_SCHEMAS = 100;
const validators = new Map<string, ValidateFunction>();

/**
 * Compiles once per distinct schema. One Ajv per schema, so that two batches' schemas with the
 * same `$id` do not collide; the same setup the API checked the schema with (RE2 patterns).
 */
function compileSchema(schema: Record<string, unknown>): ValidateFunction {
  const key = JSON.stringify(schema);
  const cached = validators.get(key);
  if (cached) return cached;
  let validate: ValidateFunction;
  try {
    validate = compileOutputSchema(schema);
  } catch (err) {
    throw new PermanentProviderError(`output schema cannot be compiled: ${err instanceof Error ? err.message : String(err)}`, undefined, err);
  }
  const oldest = validators.keys().next();
  if (validators.size >= MAX_CACHED_SCHEMAS && !oldest.done) validators.delete(oldest.value);
  validators.set(key, validate);
  return validate;
}

/** Routes an SDK's own log lines (it defaults to the console) into our logger. */
export function sdkLogger(log: Logger): Record<"error" | "warn" | "info" | "debug", (message: string, ...rest: unknown[]) => void> {
  const at = (level: "error" | "warn" | "info" | "debug") => (message: string, ...rest: unknown[]) =>
    log[level](rest.length > 0 ? { details: rest } : {}, message);
  return { error: at("error"), warn: at("warn"), info: at("info"), debug: at("debug") };
}
