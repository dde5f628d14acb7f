/**
 * `startBackground(deps)`: what a Tranche process runs besides HTTP. Every process runs the
 * effects relay (after its own commits and on a sweep) and the reconciler; worker processes
 * also run the staging and analysis workers. `close()` stops taking work, lets running jobs
 * finish, flushes the outbox and closes every connection it opened.
 */
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import type { Config } from "../config";
import type { PrismaClient } from "../db";
import type { Engine } from "../engine";
import type { Logger } from "../logger";
import type { Metrics } from "../metrics";
import { observeDatabase, observeEngine, observeQueues } from "../metrics-sources";
import { createAnalysisProcessor, type BatchAnalysis } from "./analysis.worker";
import { createEffectsRelay } from "./effects-relay";
import { loadPriceTable } from "../pricing";
import { createRateLimiter, selectProvider, type Provider } from "./providers";
import { claimQueuePrefix, databaseIdentity } from "./queue-owner";
import { createQueueWatch } from "./queue-watch";
import { createQueues, QUEUE_NAMES, type AnalysisJob, type StagingJob } from "./queues";
import { createReconciler } from "./reconciler";
import { createStagingProcessor } from "./staging.worker";
import { createWithdrawer } from "./withdraw";

export type BackgroundConfig = Pick<
  Config,
  | "REDIS_URL"
  | "QUEUE_PREFIX"
  | "STAGING_CONCURRENCY"
  | "ANALYSIS_CONCURRENCY"
  | "CHUNK_MAX_TOKENS"
  | "CHUNK_OVERLAP_TOKENS"
  | "JOB_LOCK_MS"
  | "RECONCILE_INTERVAL_MS"
  | "EFFECTS_SWEEP_MS"
  | "LLM_PROVIDER"
  | "LLM_MODEL"
  | "OPENAI_API_KEY"
  | "OPENAI_BASE_URL"
  | "ANTHROPIC_API_KEY"
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
  const redisOptions = { maxRetriesPerRequest: null, lazyConnect: false } as const;
  const connection = new Redis(config.REDIS_URL, redisOptions);
  const subscriber = new Redis(config.REDIS_URL, redisOptions);
  try {
    await claimQueuePrefix(connection, config.QUEUE_PREFIX, await databaseIdentity(prisma));
  } catch (err) {
    await Promise.all([connection.quit(), subscriber.quit()]);
    throw err;
  }
  const queues = createQueues(connection, config.QUEUE_PREFIX);
  const queueWatch = createQueueWatch({ queues: queues.all, logger: logger.child({ component: "queue-watch" }) });
  const abortChannel = `${config.QUEUE_PREFIX}:abort`;
  const withdraw = createWithdrawer({ prisma, queues, service: engine.service, logger: logger.child({ component: "withdraw" }), publisher: connection, abortChannel });
  const relay = createEffectsRelay({ pool: engine.store.pool, queues, withdraw, logger: logger.child({ component: "relay" }) });
  const reconciler = createReconciler({ prisma, queues, service: engine.service, relay, logger: logger.child({ component: "reconciler" }) });
  const reconcile = async () => {
    const { requeued } = await reconciler.reconcile();
    metrics?.reconcilerRepairs.inc(requeued);
  };
  const unobserve = metrics
    ? [observeEngine(metrics, engine), observeDatabase(metrics, prisma, logger), observeQueues(metrics, queues.all, logger)]
    : [];

  const kick = () => relay.drain().catch((err: unknown) => logger.error({ err }, "effects relay failed"));
  const unsubscribe = engine.onCommit((commit) => {
    if (commit.outboxIds.length) void kick();
  });

  const workers: Worker[] = [];
  if (runWorkers) {
    const limiter = createRateLimiter({
      redis: connection,
      prefix: `${config.QUEUE_PREFIX}:llm-limit`,
      requestsPerMinute: config.LLM_REQUESTS_PER_MINUTE,
      tokensPerMinute: config.LLM_TOKENS_PER_MINUTE,
      burstMs: config.LLM_RATE_BURST_SECONDS * 1000,
    });
    const providers = new Map<string, Provider>();
    const providerFor = (analysis: BatchAnalysis) => {
      const kind = analysis.provider ?? "default";
      let provider = providers.get(kind);
      if (!provider) {
        const choice = analysis.provider ? { ...config, LLM_PROVIDER: analysis.provider } : config;
        provider = selectProvider(choice, {
          limiter,
          logger: logger.child({ component: "provider" }),
          ...(metrics && { onRequest: (r) => metrics.providerRequest(r) }),
        });
        providers.set(kind, provider);
        logger.info({ provider: provider.name, for: kind }, "LLM provider ready");
      }
      return provider;
    };
    const common = { connection, prefix: config.QUEUE_PREFIX, lockDuration: config.JOB_LOCK_MS, stalledInterval: Math.max(500, Math.floor(config.JOB_LOCK_MS / 2)) };
    workers.push(
      new Worker<StagingJob>(
        QUEUE_NAMES.staging,
        createStagingProcessor({
          prisma,
          service: engine.service,
          logger: logger.child({ component: "staging" }),
          chunking: { maxTokens: config.CHUNK_MAX_TOKENS, overlapTokens: config.CHUNK_OVERLAP_TOKENS },
        }),
        { ...common, concurrency: config.STAGING_CONCURRENCY },
      ),
      new Worker<AnalysisJob>(
        QUEUE_NAMES.analysis,
        createAnalysisProcessor({
          prisma,
          service: engine.service,
          logger: logger.child({ component: "analysis" }),
          providerFor,
          prices: prices!,
          ...(metrics && { onUsage: (u) => metrics.providerUsage(u) }),
        }),
        { ...common, concurrency: config.ANALYSIS_CONCURRENCY },
      ),
    );
    for (const w of workers) w.on("error", (err) => logger.error({ err, queue: w.name }, "worker error"));
    // Jobs of a cancelled or failed batch that are mid-flight: abort them where they run.
    await subscriber.subscribe(abortChannel);
    subscriber.on("message", (_channel: string, message: string) => {
      const { jobIds } = JSON.parse(message) as { jobIds: string[] };
      for (const w of workers) for (const id of jobIds) w.cancelJob(id, "batch cancelled");
    });
  }

  const timers = [
    setInterval(() => void kick(), config.EFFECTS_SWEEP_MS),
    setInterval(() => {
      engine.service.sweepInbox().catch((err: unknown) => logger.error({ err }, "inbox sweep failed"));
    }, config.EFFECTS_SWEEP_MS),
    setInterval(() => {
      reconcile().catch((err: unknown) => logger.error({ err }, "reconcile failed"));
      queueWatch.paused().catch((err: unknown) => logger.error({ err }, "checking for paused queues failed"));
    }, config.RECONCILE_INTERVAL_MS),
    setInterval(() => {
      relay.prune().catch((err: unknown) => logger.error({ err }, "pruning the outbox failed"));
    }, 3_600_000),
  ];
  await reconcile();
  await queueWatch.paused();

  return {
    /** The Redis connection the queues use (readiness asks it). */
    connection,
    queues,
    queueWatch,
    relay,
    reconciler,
    async close() {
      for (const t of timers) clearInterval(t);
      unsubscribe();
      for (const off of unobserve) off();
      await Promise.all(workers.map((w) => w.close()));
      await relay.drain().catch((err: unknown) => logger.error({ err }, "final outbox flush failed"));
      await queues.close();
      await Promise.all([connection.quit(), subscriber.quit()]);
    },
  };
}

export type Background = Awaited<ReturnType<typeof startBackground>>;
