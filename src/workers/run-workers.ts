/**
 * The workers of a worker process (staging, analysis, the provider batch lane), loaded only where
 * they run: with them come the extractor pool, the answer checker, the providers' SDKs and the tokenizer.
 */
import { Worker } from "bullmq";
import type { Redis } from "ioredis";
import type { PrismaClient } from "../db";
import type { Engine } from "../engine";
import type { Logger } from "../logger";
import type { Metrics } from "../metrics";
import type { PricingResolver } from "../pricing";
import { createAnalysisProcessor, type BatchAnalysis } from "./analysis.worker";
import { createAnswerChecker, type AnswerChecker } from "./answer-check";
import type { Availability } from "./availability";
import { createExtractorPool, type ExtractorPool } from "./extractor-pool";
import type { BackgroundConfig } from "./index";
import { batchClients, createLaneProcessor } from "./lane";
import { createRateLimiter, selectProvider, type Provider } from "./providers";
import { QUEUE_NAMES, type AnalysisJob, type LaneJob, type Queues, type StagingJob } from "./queues";
import { createStagingProcessor } from "./staging.worker";

export interface WorkerDeps {
  prisma: PrismaClient;
  engine: Engine;
  config: BackgroundConfig;
  logger: Logger;
  metrics?: Metrics;
  pricing: PricingResolver;
  /** BullMQ's blocking connection, and the one that listens for aborts. */
  connection: Redis;
  subscriber: Redis;
  abortChannel: string;
  availability: Availability;
  queues: Queues;
  /** Filled with the workers started, so that the caller can pause and close them. */
  workers: Worker[];
}

/** Starts the workers; returns what they share, for the caller to close. */
export async function startWorkers({
  prisma, engine, config, logger, metrics, pricing, connection, subscriber, abortChannel, availability, queues, workers,
}: WorkerDeps): Promise<{ extractors: ExtractorPool; answers: AnswerChecker }> {
  const answers = createAnswerChecker({
    threads: config.ANSWER_CHECK_THREADS,
    timeoutMs: config.ANSWER_CHECK_TIMEOUT_MS,
    logger: logger.child({ component: "answer-check" }),
  });
  const extractors = createExtractorPool({
    size: config.EXTRACT_CONCURRENCY ?? config.STAGING_CONCURRENCY,
    timeoutMs: config.EXTRACT_TIMEOUT_MS,
    memoryMb: config.EXTRACT_MEMORY_MB,
    limits: {
      maxTextBytes: config.EXTRACT_MAX_TEXT_BYTES,
      maxPdfPages: config.EXTRACT_MAX_PDF_PAGES,
      maxUnzippedBytes: config.EXTRACT_MAX_UNZIPPED_BYTES,
      maxTokens: config.MAX_DOCUMENT_TOKENS,
    },
    chunking: { maxTokens: config.CHUNK_MAX_TOKENS, overlapTokens: config.CHUNK_OVERLAP_TOKENS },
    databaseUrl: config.DATABASE_URL,
    logger: logger.child({ component: "extractor" }),
  });
  extractors.warm();
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
        answers,
        logger: logger.child({ component: "provider" }),
        ...(metrics && { onRequest: (r) => metrics.providerRequest(r) }),
      });
      providers.set(kind, provider);
      logger.info({ provider: provider.name, for: kind }, "LLM provider ready");
    }
    return provider;
  };
  const common = {
    connection,
    prefix: config.QUEUE_PREFIX,
    lockDuration: config.JOB_LOCK_MS,
    stalledInterval: Math.max(500, Math.floor(config.JOB_LOCK_MS / 2)),
    // A job whose worker died under it runs again this often; dying once more fails it for good,
    // and the reconciler then reports its unit failed instead of running whatever kills workers.
    maxStalledCount: config.JOB_MAX_STALLS,
  };
  workers.push(
    new Worker<StagingJob>(
      QUEUE_NAMES.staging,
      createStagingProcessor({
        prisma,
        service: engine.service,
        logger: logger.child({ component: "staging" }),
        availability,
        extractors,
        pricing,
      }),
      { ...common, concurrency: config.STAGING_CONCURRENCY },
    ),
    new Worker<AnalysisJob>(
      QUEUE_NAMES.analysis,
      createAnalysisProcessor({
        prisma,
        service: engine.service,
        logger: logger.child({ component: "analysis" }),
        availability,
        providerFor,
        pricing,
        ...(metrics && { onUsage: (u) => metrics.providerUsage(u) }),
      }),
      { ...common, concurrency: config.ANALYSIS_CONCURRENCY },
    ),
    new Worker<LaneJob>(
      QUEUE_NAMES.lane,
      createLaneProcessor({
        prisma,
        pool: engine.store.pool,
        service: engine.service,
        queues,
        logger: logger.child({ component: "lane" }),
        availability,
        pricing,
        config,
        clientFor: batchClients(config),
      }),
      // Submitting uploads whole files and polling mostly waits on the provider: a few at once.
      { ...common, concurrency: 4 },
    ),
  );
  for (const w of workers) w.on("error", (err) => logger.error({ err, queue: w.name }, "worker error"));
  // Jobs of a cancelled or failed batch that are mid-flight: abort them where they run.
  await subscriber.subscribe(abortChannel);
  subscriber.on("message", (_channel: string, message: string) => {
    const { jobIds } = JSON.parse(message) as { jobIds: string[] };
    for (const w of workers) for (const id of jobIds) w.cancelJob(id, "batch cancelled");
  });
  return { extractors, answers };
}
