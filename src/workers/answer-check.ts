/**
 * Model answers are checked off the main event loop, under a time limit.
 *
 * An answer is whatever the provider sent back, and the schema whatever the batch's author wrote: Ajv's
 * `uniqueItems` compares every pair of a large array's items, and counting the tokens of a crafted answer
 * is work in proportion to it. On the main thread either would stall the API and every job lock beside
 * it. So parsing, validating and counting an answer run in a small pool of worker threads; a check that
 * takes longer than its limit has its thread terminated (a thread cannot be interrupted otherwise) and
 * fails with an {@link AnswerCheckError}, which no retry or re-ask repeats.
 *
 * Hand-written on `worker_threads` rather than a pool library: the pool needs exactly three things —
 * one check per thread, a limit that terminates the thread it expires on, and our TypeScript loaded in
 * the thread as `npm start` loads it — and is the same shape as the extractor pool beside it.
 */
import path from "node:path";
import { Worker } from "node:worker_threads";
import type { ValidateFunction } from "ajv";
import type { Logger } from "../logger";
import { compileOutputSchema } from "../output-schema";
import { countTextTokens } from "../tokens";
import { PermanentProviderError, ProviderError } from "./providers/provider";

/** What checking an answer found. */
export type CheckedAnswer =
  | { ok: true; value: unknown }
  | { ok: false; problems: string[] }
  /** The schema itself cannot be compiled: no answer can ever match it. */
  | { ok: false; schemaError: string };

/** What a checking thread is asked to do. */
type CheckWork = { kind: "check"; schema: string; text: string } | { kind: "compile"; schema: string } | { kind: "count"; text: string };

/** One request to a checking thread. */
export type CheckRequest = CheckWork & { id: number };

/** A thread's answer to a request, or its word that it has loaded and takes requests. */
export type CheckReply = { id: number; result: CheckedAnswer | number | string | null } | { ready: true };

/** A check that ran out of time or took its thread down: the task fails with it, and nothing is asked again. */
export class AnswerCheckError extends PermanentProviderError {}

/** The process is stopping: the answer was not judged, so the job may run again elsewhere. */
const closedError = () => new ProviderError("the answer checker is closed: the process is stopping", { retryable: true });

export interface AnswerChecker {
  /** Parses `text` (a Markdown fence tolerated) and validates it against `schema`. */
  check(schema: Record<string, unknown>, text: string): Promise<CheckedAnswer>;
  /** Why `schema` cannot be compiled, or null when it can. */
  compile(schema: Record<string, unknown>): Promise<string | null>;
  /** The o200k tokens of `text`. */
  count(text: string): Promise<number>;
  close(): Promise<void>;
}

export interface AnswerCheckerOptions {
  /** Most checks at once. */
  threads: number;
  /** Longest one check may take before its thread is terminated. */
  timeoutMs: number;
  logger?: Logger;
}

/** Heap limit of one checking thread: an answer is at most a few MB, and its parsed form a few times that. */
const THREAD_HEAP_MB = 512;
/** An idle thread is stopped after this long, so a worker between batches holds no thread. */
const IDLE_MS = 30_000;
const THREAD_SCRIPT = path.join(__dirname, "answer-check-thread.ts");

interface Pending {
  request: CheckWork;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

interface Slot {
  worker: Worker;
  /** Loaded and taking checks: a check's time starts only then. */
  ready: boolean;
  job?: Pending & { timer: NodeJS.Timeout };
  idleTimer?: NodeJS.Timeout;
}

export function createAnswerChecker({ threads, timeoutMs, logger }: AnswerCheckerOptions): AnswerChecker {
  const slots = new Set<Slot>();
  const queue: Pending[] = [];
  let nextId = 1;
  let closed = false;

  function spawn(): Slot {
    // Our TypeScript runs in the thread through tsx, as `npm start` runs it in the process.
    const source = THREAD_SCRIPT.endsWith(".ts")
      ? `require(${JSON.stringify(require.resolve("tsx/cjs"))}); require(${JSON.stringify(THREAD_SCRIPT)});`
      : `require(${JSON.stringify(THREAD_SCRIPT)});`;
    const worker = new Worker(source, { eval: true, resourceLimits: { maxOldGenerationSizeMb: THREAD_HEAP_MB } });
    worker.unref();
    const slot: Slot = { worker, ready: false };
    worker.on("message", (reply: CheckReply) => {
      if ("ready" in reply) {
        slot.ready = true;
        idle(slot);
        return;
      }
      const job = slot.job;
      if (!job) return;
      clearTimeout(job.timer);
      slot.job = undefined;
      job.resolve(reply.result);
      idle(slot);
    });
    const gone = (why: string) => {
      slots.delete(slot);
      clearTimeout(slot.idleTimer);
      const job = slot.job;
      slot.job = undefined;
      if (job) {
        clearTimeout(job.timer);
        job.reject(closed ? closedError() : new AnswerCheckError(`checking the answer failed: ${why}`));
      }
      next();
    };
    worker.on("error", (err) => {
      logger?.warn({ err }, "answer check thread failed");
      gone(err.message);
    });
    worker.on("exit", (code) => gone(`its thread exited (code ${code})`));
    slots.add(slot);
    return slot;
  }

  function idle(slot: Slot) {
    if (next(slot)) return;
    slot.idleTimer = setTimeout(() => {
      slots.delete(slot);
      void slot.worker.terminate();
    }, IDLE_MS);
    slot.idleTimer.unref();
  }

  /** Gives the next waiting check to `slot` (or to any free thread, starting threads as there is room); true when one was given. */
  function next(slot?: Slot): boolean {
    if (closed || !queue.length) return false;
    const free = slot ?? [...slots].find((s) => s.ready && !s.job);
    if (!free) {
      const starting = [...slots].filter((s) => !s.ready).length;
      for (let n = starting; n < queue.length && slots.size < threads; n++) spawn();
      return false;
    }
    clearTimeout(free.idleTimer);
    const job = queue.shift()!;
    const timer = setTimeout(() => {
      // The thread is stuck in the check: terminating it is the only way to stop it.
      free.job = undefined;
      slots.delete(free);
      void free.worker.terminate();
      job.reject(new AnswerCheckError(`checking the answer took longer than ${timeoutMs} ms (ANSWER_CHECK_TIMEOUT_MS)`));
      next();
    }, timeoutMs);
    free.job = { ...job, timer };
    free.worker.postMessage({ ...job.request, id: nextId++ });
    // More waiting and more room: start those too.
    if (!slot) next();
    return true;
  }

  function submit<T>(request: CheckWork): Promise<T> {
    if (closed) return Promise.reject(closedError());
    return new Promise<T>((resolve, reject) => {
      queue.push({ request, resolve: resolve as (v: unknown) => void, reject });
      next();
    });
  }

  return {
    check: (schema, text) => submit<CheckedAnswer>({ kind: "check", schema: JSON.stringify(schema), text }),
    compile: (schema) => submit<string | null>({ kind: "compile", schema: JSON.stringify(schema) }),
    count: (text) => submit<number>({ kind: "count", text }),
    async close() {
      closed = true;
      for (const job of queue.splice(0)) job.reject(closedError());
      await Promise.all([...slots].map((s) => s.worker.terminate()));
      slots.clear();
    },
  };
}

let shared: AnswerChecker | undefined;

/**
 * The checker of providers created without one (tests, scripts): two threads, a 10 s limit. Its
 * threads do not keep a process alive.
 */
export function sharedAnswerChecker(): AnswerChecker {
  shared ??= createAnswerChecker({ threads: 2, timeoutMs: 10_000 });
  return shared;
}

// What runs inside a checking thread.

const MAX_CACHED_SCHEMAS = 100;
const validators = new Map<string, ValidateFunction | { error: string }>();

/**
 * Compiles once per distinct schema. One Ajv per schema, so that two batches' schemas with the same
 * `$id` do not collide; the same setup the API checked the schema with (RE2 patterns).
 */
function validatorFor(schema: string): ValidateFunction | { error: string } {
  const cached = validators.get(schema);
  if (cached) return cached;
  let compiled: ValidateFunction | { error: string };
  try {
    compiled = compileOutputSchema(JSON.parse(schema) as Record<string, unknown>);
  } catch (err) {
    compiled = { error: err instanceof Error ? err.message : String(err) };
  }
  const oldest = validators.keys().next();
  if (validators.size >= MAX_CACHED_SCHEMAS && !oldest.done) validators.delete(oldest.value);
  validators.set(schema, compiled);
  return compiled;
}

/** Parses (tolerating a Markdown fence, which models add despite being told not to) and validates. */
function checkAnswer(schema: string, text: string): CheckedAnswer {
  const validate = validatorFor(schema);
  if ("error" in validate) return { ok: false, schemaError: validate.error };
  const fenced = /^```(?:json)?\s*\n([\s\S]*?)\n?```$/i.exec(text.trim());
  let value: unknown;
  try {
    value = JSON.parse(fenced?.[1] ?? text);
  } catch (err) {
    return { ok: false, problems: [`not valid JSON (${err instanceof Error ? err.message : String(err)})`] };
  }
  if (validate(value)) return { ok: true, value };
  return { ok: false, problems: (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? "is invalid"}`) };
}

/** Answers one request inside a checking thread. */
export function answerCheckRequest(request: CheckRequest): CheckReply {
  switch (request.kind) {
    case "check":
      return { id: request.id, result: checkAnswer(request.schema, request.text) };
    case "compile": {
      const validate = validatorFor(request.schema);
      return { id: request.id, result: "error" in validate ? validate.error : null };
    }
    case "count":
      return { id: request.id, result: countTextTokens(request.text) };
  }
}
