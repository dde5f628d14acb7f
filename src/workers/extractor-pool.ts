/**
 * Runs staging's extraction and chunking in child processes, one document at a time each, under a
 * wall-clock and a memory limit. A document that hangs a parser or blows up its memory gets its
 * extractor killed and fails alone (`extraction_timeout`, `extraction_memory`, `extraction_crashed`);
 * the worker process, and the API beside it, never run the parsers themselves.
 *
 * A child process rather than a worker thread: a thread's `resourceLimits` bound only the V8 heap,
 * while PDF.js and JSZip inflate into ArrayBuffers outside it. A process has its own RSS, which the
 * pool reads from `/proc` every {@link MEMORY_POLL_MS} and kills past the limit, and its own heap limit
 * (`--max-old-space-size`) for what the heap alone would exhaust.
 */
import { fork, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Logger } from "../logger";
import type { ChunkOptions } from "./chunk";
import { ExtractionError } from "./extract";
import type { ExtractorReply, ExtractorRequest } from "./extractor-protocol";
import type { StagedText, StageLimits } from "./stage-text";

export interface ExtractorPoolOptions {
  /** Most extractor processes at once: the staging concurrency of this worker process. */
  size: number;
  /** Longest one document may take, from its bytes to its chunks. */
  timeoutMs: number;
  /** Largest resident memory of one extractor process, in MiB; also its V8 heap limit. */
  memoryMb: number;
  limits: StageLimits;
  chunking: ChunkOptions;
  /** Where the extractors read the documents' bytes. */
  databaseUrl: string;
  logger: Logger;
}

/** The document to stage; its name is only for the reasons the pool gives itself. */
export interface StageRequest {
  documentId: string;
  name: string;
}

export interface ExtractorPool {
  /**
   * Stages one document in an extractor process; resolves with null when the document no longer exists,
   * rejects with an {@link ExtractionError} when the document is at fault.
   */
  stage(document: StageRequest, signal?: AbortSignal): Promise<StagedText | null>;
  /**
   * Starts one extractor ahead of the first document, so that a worker starting with jobs waiting
   * (a restart) does not make its first document wait for the parsers to load as well.
   */
  warm(): void;
  close(): Promise<void>;
}

const MEMORY_POLL_MS = 100;
/** An idle extractor is stopped after this long, so a worker between batches holds no extractor memory. */
const IDLE_MS = 30_000;
/** Loading the parsers takes about a second; far longer means the machine or the install is broken. */
const START_TIMEOUT_MS = 60_000;
const CHILD_SCRIPT = path.join(__dirname, "extractor-child.ts");
// The child runs our TypeScript source as `npm start` does, through tsx's loader, found from here so the
// child does not depend on its working directory.
const TSX_LOADER = pathToFileURL(require.resolve("tsx")).href;

interface Extractor {
  child: ChildProcess;
  ready: Promise<void>;
  /** The end of its stderr, where V8 says it ran out of heap. */
  stderrTail: string;
  idleTimer?: NodeJS.Timeout;
}

export function createExtractorPool(options: ExtractorPoolOptions): ExtractorPool {
  const { size, timeoutMs, memoryMb, limits, chunking, databaseUrl, logger } = options;
  const idle: Extractor[] = [];
  const all = new Set<Extractor>();
  /** Documents waiting for an extractor; null: none is coming (a start failed), ask again. */
  const waiting: ((e: Extractor | null) => void)[] = [];
  let nextId = 1;
  let closed = false;
  /** An extractor started by `warm`, not yet given a document. */
  let warming: Extractor | undefined;
  /** Extractors loading their parsers. */
  let starting = 0;

  function spawnExtractor(): Extractor {
    const child = fork(CHILD_SCRIPT, [], {
      execArgv: [`--max-old-space-size=${memoryMb}`, "--import", TSX_LOADER],
      serialization: "advanced",
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    const extractor: Extractor = { child, stderrTail: "", ready: Promise.resolve() };
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (data: string) => {
      extractor.stderrTail = (extractor.stderrTail + data).slice(-4096);
    });
    extractor.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`extractor process did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      const onMessage = (m: ExtractorReply) => {
        if (!("ready" in m)) return;
        cleanup();
        resolve();
      };
      const onExit = (code: number | null, signal: string | null) =>
        fail(new Error(`extractor process exited at start (${signal ?? `code ${code}`}): ${extractor.stderrTail.trim().slice(-500)}`));
      const cleanup = () => {
        clearTimeout(timer);
        child.off("message", onMessage);
        child.off("exit", onExit);
      };
      function fail(err: Error) {
        cleanup();
        child.kill("SIGKILL");
        reject(err);
      }
      child.on("message", onMessage);
      child.on("exit", onExit);
    });
    starting++;
    extractor.ready.then(
      () => {
        starting--;
        // A document that waited only because this one was starting may start the next one now,
        // instead of waiting for an extractor to be released (one busy with a long document may not be for minutes).
        waiting.shift()?.(null);
      },
      () => starting--,
    );
    // A send to a process that just died is reported here; the exit handler already settled its document.
    child.on("error", (err) => logger.warn({ err }, "extractor process error"));
    child.on("exit", () => {
      all.delete(extractor);
      const at = idle.indexOf(extractor);
      if (at !== -1) idle.splice(at, 1);
      if (extractor.idleTimer) clearTimeout(extractor.idleTimer);
    });
    all.add(extractor);
    return extractor;
  }

  async function acquire(): Promise<Extractor> {
    const extractor = idle.pop();
    if (extractor) {
      clearTimeout(extractor.idleTimer);
      return extractor;
    }
    if (warming) {
      const claimed = warming;
      warming = undefined;
      await claimed.ready;
      return claimed;
    }
    // One start at a time: sixteen processes loading parsers at once on a small machine take far longer
    // than one that is ready serving the queue, and the pool still grows while the queue outlasts it.
    if (all.size < size && starting === 0) {
      const fresh = spawnExtractor();
      try {
        await fresh.ready;
      } catch (err) {
        for (const next of waiting.splice(0)) next(null);
        throw err;
      }
      return fresh;
    }
    const given = await new Promise<Extractor | null>((resolve) => waiting.push(resolve));
    return given ?? acquire();
  }

  function release(extractor: Extractor): void {
    if (closed || extractor.child.exitCode !== null || extractor.child.signalCode !== null) return;
    const next = waiting.shift();
    if (next) return next(extractor);
    extractor.idleTimer = setTimeout(() => {
      if (extractor.child.connected) extractor.child.disconnect();
    }, IDLE_MS);
    extractor.idleTimer.unref();
    idle.push(extractor);
  }

  /** Called when an extractor died or was killed: someone waiting gets a fresh one. */
  function replace(): void {
    const next = waiting.shift();
    if (!next || closed) return;
    const fresh = spawnExtractor();
    fresh.ready.then(
      () => next(fresh),
      (err: unknown) => {
        logger.error({ err }, "extractor process failed to start");
        waiting.unshift(next);
      },
    );
  }

  async function stage({ documentId, name }: StageRequest, signal?: AbortSignal): Promise<StagedText | null> {
    if (closed) throw new Error("extractor pool is closed");
    const extractor = await acquire();
    const { child } = extractor;
    const id = nextId++;
    const started = performance.now();
    return new Promise<StagedText | null>((resolve, reject) => {
      let settled = false;
      let peakRss = 0;
      const finish = (outcome: () => void, keep: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearInterval(watch);
        child.off("message", onMessage);
        child.off("exit", onExit);
        signal?.removeEventListener("abort", onAbort);
        logger.debug({ document: name, ms: Math.round(performance.now() - started), peakRssMb: Math.round(peakRss / 2 ** 20), keep }, "extraction finished");
        if (keep) release(extractor);
        else {
          // Counted out now, not at its exit event, so that the next document may start a new one at once.
          all.delete(extractor);
          replace();
        }
        outcome();
      };
      const kill = (err: Error) => {
        child.kill("SIGKILL");
        finish(() => reject(err), false);
      };
      const onMessage = (m: ExtractorReply) => {
        if ("ready" in m || m.id !== id) return;
        if (m.ok) finish(() => resolve(m.result), true);
        else finish(() => reject(m.code ? new ExtractionError(m.code, m.message) : new Error(`extractor: ${m.message}`)), true);
      };
      const onExit = (code: number | null, sig: string | null) => {
        const outOfHeap = /heap out of memory|Reached heap limit/i.test(extractor.stderrTail);
        finish(
          () =>
            reject(
              outOfHeap
                ? new ExtractionError("extraction_memory", `${name}: extraction ran out of its ${memoryMb} MB heap`)
                : new ExtractionError("extraction_crashed", `${name}: the extractor crashed (${sig ?? `exit code ${code}`})`),
            ),
          false,
        );
      };
      const onAbort = () => kill(new Error(`extraction of ${name} aborted: ${String(signal?.reason ?? "aborted")}`));
      const timer = setTimeout(
        () => kill(new ExtractionError("extraction_timeout", `${name}: extraction did not finish within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const watch = setInterval(() => {
        residentBytes(child.pid).then(
          (rss) => {
            peakRss = Math.max(peakRss, rss ?? 0);
            if (!settled && rss !== undefined && rss > memoryMb * 2 ** 20) {
              kill(new ExtractionError("extraction_memory", `${name}: extraction used more than ${memoryMb} MB of memory`));
            }
          },
          () => undefined,
        );
      }, MEMORY_POLL_MS);
      child.on("message", onMessage);
      child.on("exit", onExit);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      const request: ExtractorRequest = { id, databaseUrl, documentId, limits, chunking };
      child.send(request);
    });
  }

  function warm(): void {
    if (closed || all.size > 0) return;
    const extractor = spawnExtractor();
    warming = extractor;
    extractor.ready.then(
      () => {
        if (warming !== extractor) return;
        warming = undefined;
        release(extractor);
      },
      (err: unknown) => {
        if (warming === extractor) warming = undefined;
        for (const next of waiting.splice(0)) next(null);
        logger.error({ err }, "extractor process failed to start");
      },
    );
  }

  return {
    stage,
    warm,
    async close() {
      closed = true;
      waiting.length = 0;
      await Promise.all(
        [...all].map(
          (e) =>
            new Promise<void>((resolve) => {
              if (e.child.exitCode !== null || e.child.signalCode !== null) return resolve();
              e.child.once("exit", () => resolve());
              e.child.kill("SIGKILL");
            }),
        ),
      );
    },
  };
}

/** Resident set size of a process, from `/proc` (Linux); undefined where that cannot be read. */
async function residentBytes(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  return kb === undefined ? undefined : Number(kb) * 1024;
}
