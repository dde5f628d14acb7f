/**
 * `startBackground(deps)`: what a Tranche process runs besides HTTP. Every process runs the
 * effects relay (after its own commits and on a sweep) and the reconciler; worker processes
 * also run the staging and analysis workers. `close()` stops taking work, lets running jobs
 * finish, flushes the outbox and closes every connection it opened.
 */
import type { Worker } from "bullmq";
import { Redis } from "ioredis";
import type { Config } from "../config";
import type { PrismaClient } from "../db";
import type { Engine } from "../engine";
import type { Logger } from "../logger";
import type { Metrics } from "../metrics";
import { observeDatabase, observeEngine, observeQueues } from "../metrics-sources";
import type { AnswerChecker } from "./answer-check";
import { createAvailability } from "./availability";
import { createEffectsRelay } from "./effects-relay";
import { createPricingResolver, loadPriceTable } from "../pricing";
import type { ExtractorPool } from "./extractor-pool";
import { claimQueuePrefix, databaseIdentity } from "./queue-owner";
import { createQueueWatch } from "./queue-watch";
import { createQueues } from "./queues";
import { createReconciler } from "./reconciler";
import { createWithdrawer } from "./withdraw";

export type BackgroundConfig = Pick<
  Config,
  | "DATABASE_URL"
  | "REDIS_URL"
  | "QUEUE_PREFIX"
  | "STAGING_CONCURRENCY"
  | "ANALYSIS_CONCURRENCY"
  | "CHUNK_MAX_TOKENS"
  | "CHUNK_OVERLAP_TOKENS"
  | "EXTRACT_CONCURRENCY"
  | "ANSWER_CHECK_THREADS"
  | "ANSWER_CHECK_TIMEOUT_MS"
  | "EXTRACT_TIMEOUT_MS"
  | "EXTRACT_MEMORY_MB"
  | "EXTRACT_MAX_TEXT_BYTES"
  | "EXTRACT_MAX_PDF_PAGES"
  | "EXTRACT_MAX_UNZIPPED_BYTES"
  | "MAX_DOCUMENT_TOKENS"
  | "JOB_LOCK_MS"
  | "JOB_MAX_STALLS"
  | "RECONCILE_INTERVAL_MS"
  | "EFFECTS_SWEEP_MS"
  | "LLM_PROVIDER"
  | "LLM_MODEL"
  | "OPENAI_API_KEY"
  | "OPENAI_BASE_URL"
  | "ANTHROPIC_API_KEY"
  | "ANTHROPIC_BASE_URL"
  | "LANE_MAX_OPEN"
  | "LANE_MAX_REQUESTS"
  | "LANE_POLL_MS"
  | "LANE_POLL_MAX_MS"
  | "LANE_MAX_SUBMISSIONS"
  | "LLM_TIMEOUT_MS"
  | "LLM_MAX_RETRIES"
  | "LLM_OUTPUT_RETRIES"
  | "LLM_PRICES_FILE"
  | "LLM_REQUESTS_PER_MINUTE"
  | "LLM_TOKENS_PER_MINUTE"
  | "LLM_RATE_BURST_SECONDS"
>;

export interface BackgroundDeps {
  prisma: PrismaClient;
  engine: Engine;
  config: BackgroundConfig;
  logger: Logger;
  /** Run the staging and analysis workers in this process (API-only processes do not). */
  runWorkers: boolean;
  /** This process's metrics, fed from the engine, the queues, the reconciler and the provider calls. */
  metrics?: Metrics;
}

export async function startBackground({ prisma, engine, config, logger, runWorkers, metrics }: BackgroundDeps) {
  // First, so that a bad price file stops the process before it opens anything.
  const prices = runWorkers ? loadPriceTable(config.LLM_PRICES_FILE) : undefined;
  const pricing = prices && createPricingResolver(config, prices);
  // Workers block on Redis and must wait for it however long it is gone (BullMQ needs
  // maxRetriesPerRequest: null there). Everything else (the relay, the reconciler, the
  // dashboard, readiness) talks to Redis through `producer`, which fails at once while Redis
  // is away instead of queueing commands forever: the outbox keeps the work meanwhile.
  const redisOptions = { maxRetriesPerRequest: null, lazyConnect: false } as const;
  const connection = new Redis(config.REDIS_URL, redisOptions);
  const subscriber = new Redis(config.REDIS_URL, redisOptions);
  const producer = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: false });
  const redisError = (err: Error) => logger.debug({ err }, "Redis connection error");
  for (const r of [connection, subscriber, producer]) r.on("error", redisError);
  try {
    await claimQueuePrefix(connection, config.QUEUE_PREFIX, await databaseIdentity(prisma));
  } catch (err) {
    await Promise.all([connection, subscriber, producer].map((r) => r.quit().catch(() => r.disconnect())));
    throw err;
  }
  const queues = createQueues(producer, config.QUEUE_PREFIX, redisError);
  const queueWatch = createQueueWatch({ queues: queues.all, logger: logger.child({ component: "queue-watch" }) });
  const abortChannel = `${config.QUEUE_PREFIX}:abort`;
  const withdraw = createWithdrawer({ prisma, queues, service: engine.service, logger: logger.child({ component: "withdraw" }), publisher: producer, abortChannel });
  const relay = createEffectsRelay({ pool: engine.store.pool, queues, withdraw, logger: logger.child({ component: "relay" }) });
  const reconciler = createReconciler({ prisma, queues, service: engine.service, relay, logger: logger.child({ component: "reconciler" }) });
  const reconcile = async () => {
    const { requeued } = await reconciler.reconcile();
    metrics?.reconcilerRepairs.inc(requeued);
  };
  const unobserve = metrics
    ? [observeEngine(metrics, engine), observeDatabase(metrics, prisma, logger), observeQueues(metrics, queues.all, logger)]
    : [];

  const workers: Worker[] = [];
  const availability = createAvailability({
    probe: () => prisma.$queryRaw`SELECT 1`,
    logger: logger.child({ component: "availability" }),
    probeIntervalMs: Math.min(1000, config.EFFECTS_SWEEP_MS),
    // Taking jobs that cannot report would only burn their attempts.
    onDown: () => {
      for (const w of workers) void w.pause(true).catch((err: unknown) => logger.warn({ err }, "pausing a worker failed"));
    },
    onUp: () => {
      for (const w of workers) void w.resume();
    },
  });
  /** Logs a failed background step, quietly when it failed because PostgreSQL or Redis is away. */
  const failed = (what: string) => (err: unknown) => {
    // A step that failed while Redis is away says nothing about PostgreSQL.
    if (producer.status !== "ready" || availability.noticed(err)) logger.debug({ err }, `${what} failed while a service is unavailable`);
    else logger.error({ err }, `${what} failed`);
  };

  const kick = () => relay.drain().catch(failed("effects relay"));
  const unsubscribe = engine.onCommit((commit) => {
    if (commit.outboxIds.length) void kick();
  });

  // Only a process that runs workers loads them: the processors, the extractors and the providers
  // (their SDKs and the tokenizer) are most of a process's memory, and an API process needs none of them.
  let extractors: ExtractorPool | undefined;
  let answers: AnswerChecker | undefined;
  if (runWorkers) {
    const { startWorkers } = await import("./run-workers");
    ({ extractors, answers } = await startWorkers({
      prisma, engine, config, logger, metrics, pricing: pricing!, connection, subscriber, abortChannel, availability, queues, workers,
    }));
  }

  const timers = [
    setInterval(() => void kick(), config.EFFECTS_SWEEP_MS),
    setInterval(() => {
      if (!availability.isDown()) engine.service.sweepInbox().catch(failed("inbox sweep"));
    }, config.EFFECTS_SWEEP_MS),
    setInterval(() => {
      if (!availability.isDown()) reconcile().catch(failed("reconcile"));
      queueWatch.paused().catch(failed("checking for paused queues"));
    }, config.RECONCILE_INTERVAL_MS),
    setInterval(() => {
      relay.prune().catch(failed("pruning the outbox"));
    }, 3_600_000),
  ];
  // The first reconcile repairs what a crash left; a Redis that is down now is repaired by a later one.
  if (producer.status !== "ready") {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        producer.off("ready", done);
        resolve();
      };
      const timer = setTimeout(done, 10_000);
      producer.once("ready", done);
    });
  }
  await reconcile().catch(failed("the first reconcile"));
  await queueWatch.paused().catch(failed("checking for paused queues"));

  return {
    /** The Redis connection the queues use (readiness asks it). */
    connection,
    queues,
    queueWatch,
    relay,
    reconciler,
    availability,
    /** Whether Redis answers now, for readiness. */
    redisReady: () => producer.status === "ready",
    async close() {
      for (const t of timers) clearInterval(t);
      unsubscribe();
      for (const off of unobserve) off();
      availability.close();
      // Closing a worker or a queue waits for its Redis connection, forever while Redis is gone. Then
      // nothing can be acknowledged anyway: the running jobs are left to stall and run again once Redis
      // is back (a paid answer is not asked again: the outcome is held in the job or already reported).
      const redisAway = producer.status !== "ready";
      if (redisAway) logger.warn({ waitMs: REDIS_AWAY_CLOSE_MS }, "Redis is unreachable: stopping without waiting for it; running jobs run again once it is back");
      const viaRedis = (what: string, step: () => Promise<unknown>) => (redisAway ? bounded(step(), REDIS_AWAY_CLOSE_MS, what, logger) : step());
      await viaRedis("closing the workers", () => Promise.all(workers.map((w) => w.close(redisAway))));
      await extractors?.close();
      await answers?.close();
      await relay.drain().catch(failed("final outbox flush"));
      await viaRedis("closing the queues", () => queues.close());
      for (const r of [connection, subscriber, producer]) {
        if (redisAway) r.disconnect();
        else await r.quit().catch(() => r.disconnect());
      }
    },
  };
}

/** How long a stop waits for each step that needs Redis while Redis is unreachable. */
const REDIS_AWAY_CLOSE_MS = 2_000;

/** `step`, or a warning and nothing more once `ms` have passed. */
async function bounded(step: Promise<unknown>, ms: number, what: string, logger: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), ms)));
  const outcome = await Promise.race([step.then(() => "done" as const, () => "failed" as const), late]);
  clearTimeout(timer);
  if (outcome === "late") logger.warn({ waitedMs: ms }, `${what} did not finish without Redis; going on`);
}

export type Background = Awaited<ReturnType<typeof startBackground>>;
