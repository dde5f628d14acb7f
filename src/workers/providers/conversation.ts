/**
 * The part of an LLM analysis that does not depend on the SDK: prompts, map-reduce for documents
 * longer than the context window, the per-attempt timeout, rate limiting, retries, usage, and checking
 * the output against the batch's JSON Schema with re-asks.
 * Each SDK-backed provider supplies only `send` (one HTTP call) and `classify` (its errors → ours).
 */
import type { Logger } from "pino";
import { countTextTokens } from "../../tokens";
import { sharedAnswerChecker, type AnswerChecker } from "../answer-check";
import type { DocumentPlan } from "../../machines/batch.events";
import {
  addUsage,
  type AnalysisRequest,
  type AnalysisResult,
  InvalidOutputError,
  NO_USAGE,
  PermanentProviderError,
  type Provider,
  ProviderError,
  type ProviderUsage,
} from "./provider";
import { readRateHeaders } from "./rate-headers";
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
  /** Told of every HTTP call (metrics): its status (`200`, `429`, …, `aborted`, `connection`) and duration. */
  onRequest?: (r: { provider: string; model: string; status: string; seconds: number }) => void;
  /** Where answers are parsed, validated and counted, off the main thread; a shared pool by default. */
  answers?: AnswerChecker;
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
  /** All prompt tokens, the cached and cache-written ones included. */
  inputTokens?: number;
  cachedInputTokens?: number;
  cacheWriteTokens?: number;
  outputTokens?: number;
  /** The response's headers, for the rate limits they announce. */
  headers?: Headers;
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
  /** Parses, validates and counts answers off the main thread. */
  answers: AnswerChecker;
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
  const onRequest = opts.onRequest;
  const options: ConversationOptions = {
    provider: name,
    model: opts.model,
    timeoutMs: opts.timeoutMs,
    outputRetries: opts.outputRetries,
    retry,
    ...(opts.limiter && { limiter: opts.limiter }),
    logger,
    answers: opts.answers ?? sharedAnswerChecker(),
    send: onRequest ? timed(name, send, onRequest) : send,
    classify,
  };
  return { name, model: opts.model, billed: true, analyze: (req) => converse(req, options) };
}

/** `send`, reporting each call's outcome and duration. */
function timed(provider: string, send: ConversationOptions["send"], onRequest: NonNullable<SdkProviderOptions["onRequest"]>): ConversationOptions["send"] {
  return async (prompt) => {
    const started = performance.now();
    const report = (status: string) => onRequest({ provider, model: prompt.model, status, seconds: (performance.now() - started) / 1000 });
    try {
      const reply = await send(prompt);
      report("200");
      return reply;
    } catch (err) {
      const status = (err as { status?: unknown } | null)?.status;
      report(typeof status === "number" ? String(status) : prompt.signal.aborted ? "aborted" : "connection");
      throw err;
    }
  };
}

/** The running totals of one analysis. */
interface Tally {
  usage: ProviderUsage;
  attempts: number;
  model?: string;
}

/**
 * Runs one analysis to a valid output, or fails with a `ProviderError` carrying what was spent (or the
 * signal's reason when cancelled). A document that fits the context window is one request; a longer
 * one is analysed map-reduce (see `planAnalysis`).
 */
async function converse(req: AnalysisRequest, options: ConversationOptions): Promise<AnalysisResult> {
  const model = req.model ?? options.model;
  const system = systemPrompt(req);
  const tally: Tally = { usage: NO_USAGE, attempts: 0 };
  const ask = (user: string) => askUntilValid(req, options, { model, system, user }, tally);
  try {
    if (req.outputSchema !== undefined) {
      const schemaError = await options.answers.compile(req.outputSchema);
      if (schemaError !== null) throw new PermanentProviderError(`output schema cannot be compiled: ${schemaError}`);
    }
    const plan = planAnalysis(req, system);
    let output: unknown;
    if (plan.strategy === "single") {
      output = await ask(userPrompt(req));
    } else {
      options.logger.info({ document: req.documentName, parts: plan.parts.length }, "document exceeds the context window; analysing it map-reduce");
      const answers: string[] = [];
      for (const [i, part] of plan.parts.entries()) answers.push(asText(await ask(mapPrompt(req.documentName, i, plan.parts.length, part))));
      output = await combine(req, system, answers, ask);
    }
    return { output, ...tally.usage, attempts: tally.attempts, model: tally.model ?? model, provider: options.provider, strategy: plan.strategy };
  } catch (err) {
    if (err instanceof ProviderError) err.usage = tally.usage;
    throw err;
  }
}

/** One question asked until the answer is valid (re-asks included); adds what it cost to `tally`. */
async function askUntilValid(
  req: AnalysisRequest,
  options: ConversationOptions,
  q: { model: string; system: string; user: string },
  tally: Tally,
): Promise<unknown> {
  const turns: Turn[] = [{ role: "user", content: q.user }];
  for (let ask = 0; ; ask++) {
    const { reply, attempts } = await call(req, options, { model: q.model, system: q.system, turns: [...turns] });
    tally.usage = addUsage(tally.usage, {
      requests: 1,
      inputTokens: reply.inputTokens,
      cachedInputTokens: reply.cachedInputTokens ?? 0,
      cacheWriteTokens: reply.cacheWriteTokens ?? 0,
      outputTokens: reply.outputTokens,
    });
    tally.attempts += attempts;
    tally.model = reply.model ?? tally.model;
    if (req.outputSchema === undefined) return reply.text;
    const parsed = await options.answers.check(req.outputSchema, reply.text);
    if (parsed.ok) return parsed.value;
    if ("schemaError" in parsed) throw new PermanentProviderError(`output schema cannot be compiled: ${parsed.schemaError}`);
    if (ask >= options.outputRetries) {
      throw new InvalidOutputError(`output still invalid after ${ask} re-ask(s): ${parsed.problems.join("; ")}`, reply.text, parsed.problems);
    }
    options.logger.info({ problems: parsed.problems, ask: ask + 1 }, "output invalid; asking again");
    turns.push({ role: "assistant", content: reply.text }, { role: "user", content: reaskPrompt(parsed.problems) });
  }
}

/**
 * Combines the parts' answers into the document's answer in one request; when even the answers do not
 * fit together, combines them in groups that fit, and those results again, until one answer is left.
 */
async function combine(req: AnalysisRequest, system: string, answers: string[], ask: (user: string) => Promise<unknown>): Promise<unknown> {
  const window = promptRoom(req);
  for (;;) {
    const whole = combinePrompt(req.documentName, answers, { from: 1, of: answers.length });
    if (window === undefined || fits(system, whole, window)) return ask(whole);
    const label = countTextTokens(combinePrompt("", ["", ""], { from: answers.length, of: answers.length })) - countTextTokens(combinePrompt("", [""], { from: answers.length, of: answers.length }));
    const header = promptTokens(system, combinePrompt(req.documentName, [], { from: answers.length, of: answers.length }));
    const groups = packInto(answers, window - header, label);
    if (groups.length >= answers.length) {
      throw new PermanentProviderError(`the answers for the parts of ${req.documentName} do not fit the context window even two at a time`);
    }
    const next: string[] = [];
    let from = 1;
    for (const group of groups) {
      next.push(asText(await ask(combinePrompt(req.documentName, group, { from, of: answers.length }))));
      from += group.length;
    }
    answers = next;
  }
}

type Plan = { strategy: "single" } | { strategy: "map_reduce"; parts: string[][] };

/** What bounds one analysis's spending: re-asks after invalid output, and the ceiling on each answer (null: none). */
export interface CostBounds {
  reasks: number;
  answerCeiling: number | null;
}

/**
 * What analysing one document takes, counted before any request: the requests and their prompt
 * tokens (the same prompts `converse` sends, counted the same way), first try and worst case — every
 * answer re-asked `reasks` times, every answer (and so every map step's answer a combining request
 * reads) at its ceiling, every re-ask prompt at its longest. A document whose chunks cannot fit the
 * window is planned as what it costs: nothing, as it fails before any request.
 */
export function planCost(req: AnalysisRequest, bounds: CostBounds): DocumentPlan {
  const system = systemPrompt(req);
  let plan: Plan;
  try {
    plan = planAnalysis(req, system);
  } catch (err) {
    if (err instanceof PermanentProviderError) return { strategy: "map_reduce", requests: 0, inputTokens: 0, requestsMax: 0, inputTokensMax: 0, outputTokensMax: 0 };
    throw err;
  }
  const answer = bounds.answerCeiling ?? 0;
  const prompts =
    plan.strategy === "single"
      ? [promptTokens(system, userPrompt(req))]
      : [
          ...plan.parts.map((part, i) => promptTokens(system, mapPrompt(req.documentName, i, plan.parts.length, part))),
          ...combineCost(req, system, plan.parts.length, answer),
        ];
  const r = bounds.reasks;
  // Ask k of a question carries k earlier answers and k re-ask prompts, each a message of its own.
  const reaskGrowth = answer + REASK_MAX_TOKENS + 2 * MESSAGE_OVERHEAD;
  const first = prompts.reduce((n, p) => n + p, 0);
  return {
    strategy: plan.strategy,
    requests: prompts.length,
    inputTokens: first,
    requestsMax: prompts.length * (r + 1),
    inputTokensMax: first * (r + 1) + prompts.length * reaskGrowth * ((r * (r + 1)) / 2),
    outputTokensMax: bounds.answerCeiling === null ? null : prompts.length * (r + 1) * bounds.answerCeiling,
  };
}

/** The prompt tokens of each combining request `combine` makes of `parts` answers of `answer` tokens each. */
function combineCost(req: AnalysisRequest, system: string, parts: number, answer: number): number[] {
  const window = promptRoom(req);
  const calls: number[] = [];
  // Each answer as it is listed: its label, its text and the blank line after it (and 2 tokens for
  // merges across the joins our count of the parts cannot see).
  const listed = (i: number, of: number) => countTextTokens(`Answer for part ${i} of ${of}:
`) + answer + 1 + 2;
  for (let n = parts; ; ) {
    const header = promptTokens(system, combinePrompt(req.documentName, [], { from: 1, of: n }));
    const items = Array.from({ length: n }, (_, i) => listed(i + 1, n));
    const whole = header + items.reduce((a, b) => a + b, 0);
    if (window === undefined || whole <= window) return [...calls, whole];
    const groups: number[][] = [];
    let current: number[] = [];
    let used = 0;
    for (const tokens of items) {
      if (current.length > 0 && used + tokens > window - header) {
        groups.push(current);
        current = [];
        used = 0;
      }
      current.push(tokens);
      used += tokens;
    }
    if (current.length > 0) groups.push(current);
    // Fails there before a request (the answers do not fit even two at a time): nothing more is spent.
    if (groups.length >= n) return calls;
    for (const group of groups) calls.push(header + group.reduce((a, b) => a + b, 0));
    n = groups.length;
  }
}

/** Share of the context window prompts may fill: our tokenizer (o200k) is not every provider's. */
const CONTEXT_HEADROOM = 0.9;
/** Room kept for the answer when the batch sets no `max_tokens`: at most this, the model's ceiling, and a quarter of the window. */
const DEFAULT_ANSWER_RESERVE = 4096;
/** What a chat API adds around each message and the reply, in tokens (OpenAI's documented 3 + 4 per message, rounded up). */
const MESSAGE_OVERHEAD = 4;
const PROMPT_OVERHEAD = 3;

/** Tokens the prompt may take: the headroomed window less the answer's room; undefined when the window is unknown. */
function promptRoom(req: AnalysisRequest): number | undefined {
  if (req.contextTokens === undefined) return undefined;
  const reserve = req.maxTokens ?? Math.min(DEFAULT_ANSWER_RESERVE, req.maxOutputTokens ?? DEFAULT_ANSWER_RESERVE, Math.floor(req.contextTokens / 4));
  return Math.floor(req.contextTokens * CONTEXT_HEADROOM) - reserve;
}

function promptTokens(system: string, user: string): number {
  return countTextTokens(system) + countTextTokens(user) + 2 * MESSAGE_OVERHEAD + PROMPT_OVERHEAD;
}

function fits(system: string, user: string, room: number): boolean {
  return promptTokens(system, user) <= room;
}

/**
 * One request when the whole document fits (or the window is unknown); otherwise consecutive groups of
 * chunks, each as large as fits beside the instructions. A chunk that cannot fit even alone is an error
 * no retry can mend.
 */
export function planAnalysis(req: AnalysisRequest, system = systemPrompt(req)): Plan {
  const room = promptRoom(req);
  if (room === undefined || fits(system, userPrompt(req), room)) return { strategy: "single" };
  const texts = [...req.chunks].sort((a, b) => a.index - b.index).map((c) => c.text);
  // The part's header is as long as it gets when numbered with the largest numbers.
  const header = promptTokens(system, mapPrompt(req.documentName, texts.length, texts.length, []));
  const parts = packInto(texts, room - header);
  if (parts.some((p) => p.length === 1 && !fits(system, mapPrompt(req.documentName, 0, parts.length, p), room))) {
    throw new PermanentProviderError(
      `${req.documentName}: a chunk does not fit the context window of ${req.contextTokens} tokens beside the instructions; lower CHUNK_MAX_TOKENS`,
    );
  }
  return { strategy: "map_reduce", parts };
}

/**
 * Consecutive groups of `texts` whose tokens (with `perItem` more for each, and the blank lines between)
 * stay within `room`; an oversized text gets a group of its own.
 */
function packInto(texts: string[], room: number, perItem = 0): string[][] {
  const groups: string[][] = [];
  let current: string[] = [];
  let used = 0;
  for (const text of texts) {
    const tokens = countTextTokens(text) + 1 + perItem;
    if (current.length > 0 && used + tokens > room) {
      groups.push(current);
      current = [];
      used = 0;
    }
    current.push(text);
    used += tokens;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

type CountedReply = Reply & { inputTokens: number; outputTokens: number };

/** The headers of a failed HTTP call, where the SDK's error carries them. */
function headersOf(err: unknown): Headers | undefined {
  const headers = (err as { headers?: unknown } | null)?.headers;
  return headers instanceof Headers ? headers : undefined;
}

async function call(
  req: AnalysisRequest,
  options: ConversationOptions,
  prompt: Omit<Prompt, "signal">,
): Promise<{ reply: CountedReply; attempts: number }> {
  // Off the main thread once a re-ask's prompt holds the model's earlier answer, whatever its size.
  const text = [prompt.system, ...prompt.turns.map((t) => t.content)].join("\n");
  const promptCount = prompt.turns.length > 1 ? await countOffThread(options, text) : countTextTokens(text);
  // Reserved before the call: the prompt with the API's per-message overhead, and the answer's ceiling.
  const estimate = promptCount + PROMPT_OVERHEAD + MESSAGE_OVERHEAD * (1 + prompt.turns.length) + (req.maxTokens ?? LIMITER_ANSWER_ESTIMATE);
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
        const failure = err instanceof ProviderError ? err : options.classify(err);
        // An HTTP refusal (429, 400, 5xx) used none of the tokens reserved for it; a lost connection may have.
        if (failure.status !== undefined) await limiter?.record(0, estimate, readRateHeaders(headersOf(err)));
        throw failure;
      }
      const counted = {
        ...reply,
        inputTokens: reply.inputTokens ?? promptCount,
        outputTokens: reply.outputTokens ?? (await countOffThread(options, reply.text)),
      };
      await limiter?.record(counted.inputTokens + counted.outputTokens, estimate, readRateHeaders(reply.headers));
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

/**
 * The tokens of text that holds a model's answer, counted off the main thread; a count that fails
 * (past its time limit) falls back to the UTF-8 bytes, which no token count exceeds, rather than
 * failing an answer already paid for.
 */
function countOffThread(options: ConversationOptions, text: string): Promise<number> {
  return options.answers.count(text).catch((err: unknown) => {
    options.logger.warn({ err }, "counting the answer's tokens failed; counting its bytes instead");
    return Buffer.byteLength(text);
  });
}

/** Answer tokens the rate limiter reserves for a call whose batch sets no `max_tokens`, until the real count corrects it. */
const LIMITER_ANSWER_ESTIMATE = 512;

/**
 * The instructions, plus the schema and the demand for bare JSON when there is a schema. The same for
 * every request of a batch (single, map and combine alike) and always first, so that the provider's
 * prompt cache serves it after the first task.
 */
export function systemPrompt(req: Pick<AnalysisRequest, "instructions" | "outputSchema">): string {
  if (req.outputSchema === undefined) return req.instructions;
  return (
    `${req.instructions}\n\nAnswer with a single JSON value that matches the JSON Schema below, and nothing else: ` +
    `no prose, no Markdown code fences.\n\nJSON Schema:\n${JSON.stringify(req.outputSchema)}`
  );
}

/** The document's name and its chunks in order. */
export function userPrompt(req: Pick<AnalysisRequest, "documentName" | "chunks">): string {
  const text = [...req.chunks].sort((a, b) => a.index - b.index).map((c) => c.text).join("\n\n");
  return `Document: ${req.documentName}\n\n${text}`;
}

/** One part of a long document, analysed on its own. */
function mapPrompt(documentName: string, index: number, count: number, texts: string[]): string {
  return (
    `Document: ${documentName} (part ${index + 1} of ${count})\n` +
    `The document is too long for one request, so it is analysed in ${count} consecutive parts. ` +
    `Analyse only this part; your answer will be combined with the answers for the other parts.\n\n${texts.join("\n\n")}`
  );
}

/** Answers for consecutive parts (`from` counts from 1), to be made into one. */
function combinePrompt(documentName: string, answers: string[], range: { from: number; of: number }): string {
  const listed = answers.map((a, i) => `Answer for part ${range.from + i} of ${range.of}:\n${a}`).join("\n\n");
  return (
    `Document: ${documentName} (combining)\n` +
    `The document was analysed in ${range.of} consecutive parts. Combine the answers below into the one answer ` +
    `for the whole document, as if you had read it all at once.\n\n${listed}`
  );
}

const asText = (value: unknown): string => (typeof value === "string" ? value : JSON.stringify(value));

/**
 * Re-ask prompts are cut to this many tokens, so the most a re-ask can cost is known before the
 * first request is sent (the budget reserves it).
 */
export const REASK_MAX_TOKENS = 1000;

function reaskPrompt(problems: string[]): string {
  const say = (listed: string) => `Your answer was rejected: ${listed}. Answer again with only the corrected JSON.`;
  let listed = problems.join("; ");
  if (countTextTokens(say(listed)) <= REASK_MAX_TOKENS) return say(listed);
  while (listed.length > 0 && countTextTokens(say(`${listed}…`)) > REASK_MAX_TOKENS) listed = listed.slice(0, Math.floor(listed.length * 0.8));
  return say(`${listed}…`);
}

/** Routes an SDK's own log lines (it defaults to the console) into our logger. */
export function sdkLogger(log: Logger): Record<"error" | "warn" | "info" | "debug", (message: string, ...rest: unknown[]) => void> {
  const at = (level: "error" | "warn" | "info" | "debug") => (message: string, ...rest: unknown[]) =>
    log[level](rest.length > 0 ? { details: rest } : {}, message);
  return { error: at("error"), warn: at("warn"), info: at("info"), debug: at("debug") };
}
