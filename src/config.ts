/**
 * All configuration, parsed once from the environment with every default in one place.
 * A bad value stops the process at start with every problem listed (see `.env.example`).
 */
import "dotenv/config";
import { z } from "zod";

const ratio = z.coerce.number().min(0).max(1);

export const configSchema = z.object({
  NODE_ENV: z.enum(["development", "test", "production"]).default("development"),
  /** HTTP port of the API, UI and dashboards. */
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** Interface to listen on; 0.0.0.0 exposes the API beyond this machine. */
  HOST: z.string().default("127.0.0.1"),
  /**
   * Host names (comma-separated, no port) the server answers to, so a DNS-rebound name cannot
   * reach it; `*` accepts any. Unset: localhost, 127.0.0.1, ::1 and HOST.
   */
  ALLOWED_HOSTS: z
    .string()
    .optional()
    .transform((v) => (v === undefined ? undefined : v.split(",").map((h) => h.trim().toLowerCase()).filter(Boolean))),
  /** PostgreSQL, the source of truth. The database is created and migrated at start when missing. */
  DATABASE_URL: z.string().url().default("postgresql://postgres@127.0.0.1:5432/tranche"),
  /** Connections per process. */
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  /** Redis for BullMQ. It holds no state that PostgreSQL cannot rebuild. */
  REDIS_URL: z.string().url().default("redis://127.0.0.1:6379"),
  /**
   * Prefix of every BullMQ key, so that several Tranche installs can share one Redis. Unset:
   * the database's name, so two installations on different databases never share queues.
   */
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).optional(),
  /** Where a worker process (`npm run worker`) serves /metrics, /healthz and /readyz; API processes serve them on PORT. */
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** Batches analysed at once; the others wait in the batch queue. */
  MAX_RUNNING_BATCHES: z.coerce.number().int().min(1).default(1),
  /** Most jobs one batch has in Redis at once (per kind of work). */
  DISPATCH_WINDOW: z.coerce.number().int().min(1).max(10_000).default(64),
  /** Default share of documents that may fail staging (a batch may set its own). */
  STAGING_TOLERANCE: ratio.default(0.1),
  /** Default share of tasks that may fail analysis (a batch may set its own). */
  FAILURE_TOLERANCE: ratio.default(0.1),
  /** Largest JSON request body, e.g. `25mb`. */
  BODY_LIMIT: z.string().regex(/^\d+(b|kb|mb)$/i).default("25mb"),
  /** Largest single uploaded document, in bytes. */
  MAX_DOCUMENT_BYTES: z.coerce.number().int().min(1).default(20 * 1024 * 1024),
  /** Largest multipart or zip upload (the whole body), e.g. `256mb`; files stream to temp files, never into memory. */
  UPLOAD_LIMIT: z.string().regex(/^\d+(b|kb|mb|gb)$/i).default("256mb"),
  /** Most files in one multipart request (add more in pages, or send a zip archive). */
  MAX_FILES_PER_REQUEST: z.coerce.number().int().min(1).max(100_000).default(1000),
  /** Most documents in one zip archive. */
  MAX_ARCHIVE_DOCUMENTS: z.coerce.number().int().min(1).default(100_000),
  /** Most bytes one zip archive may inflate to, e.g. `4gb` (read from its directory before anything is stored). */
  MAX_ARCHIVE_BYTES: z.string().regex(/^\d+(b|kb|mb|gb)$/i).default("4gb"),

  /** Documents one worker process stages at once. */
  STAGING_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(4),
  /** Tasks one worker process analyses at once. */
  ANALYSIS_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(8),
  /** Chunk size and overlap, in tokens (o200k_base). */
  CHUNK_MAX_TOKENS: z.coerce.number().int().min(16).default(1000),
  CHUNK_OVERLAP_TOKENS: z.coerce.number().int().min(0).default(100),
  /** Extractor processes one worker process runs at once; the staging concurrency when unset. */
  EXTRACT_CONCURRENCY: z.coerce.number().int().min(1).max(64).optional(),
  /** Threads one worker process checks model answers in (parse, validate against the schema, count tokens). */
  ANSWER_CHECK_THREADS: z.coerce.number().int().min(1).max(64).default(2),
  /** Longest one answer's check may take; past it its thread is terminated and the task fails, not retried. */
  ANSWER_CHECK_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  /** Longest one document's extraction and chunking may take; past it the document fails `extraction_timeout`. */
  EXTRACT_TIMEOUT_MS: z.coerce.number().int().min(100).default(60_000),
  /** Largest resident memory (and V8 heap) of one extractor process, in MiB; past it the document fails `extraction_memory`. */
  EXTRACT_MEMORY_MB: z.coerce.number().int().min(64).default(1024),
  /** Largest extracted text of one document, in UTF-8 bytes, checked while extracting (`text_too_large`). */
  EXTRACT_MAX_TEXT_BYTES: z.coerce.number().int().min(1).default(8 * 1024 * 1024),
  /** Most pages of one PDF, read before any page is parsed (`too_many_pages`). */
  EXTRACT_MAX_PDF_PAGES: z.coerce.number().int().min(1).default(2000),
  /** Largest uncompressed size of one DOCX, read from its zip directory before inflating (`archive_too_large`). */
  EXTRACT_MAX_UNZIPPED_BYTES: z.coerce.number().int().min(1).default(64 * 1024 * 1024),
  /** Most o200k_base tokens of one document's text (`too_many_tokens`): a bigger one would cost too much to analyse. */
  MAX_DOCUMENT_TOKENS: z.coerce.number().int().min(1).default(500_000),
  /** How long a worker's lock on a job lasts; a worker that died is noticed after about this long. */
  JOB_LOCK_MS: z.coerce.number().int().min(1000).default(30_000),
  /**
   * How often a job whose worker process died under it runs again before it fails for good (its
   * unit is then reported failed). Extraction runs in extractor processes, so a document alone
   * can no longer kill a worker; this bounds what still could (the OOM killer, a crash loop).
   */
  JOB_MAX_STALLS: z.coerce.number().int().min(0).max(1000).default(2),
  /** How often the reconciler compares PostgreSQL with Redis, and the outbox is swept. */
  RECONCILE_INTERVAL_MS: z.coerce.number().int().min(100).default(5_000),
  EFFECTS_SWEEP_MS: z.coerce.number().int().min(50).default(1_000),
  /**
   * How long a worker report waits for others of the same process to share its INSERT into the
   * inbox: longer makes fewer, larger appends (and acknowledges each job that much later).
   */
  INBOX_COALESCE_MS: z.coerce.number().int().min(0).max(1000).default(2),
  /**
   * Most inbox reports one transaction applies: a drain group, and what a task start's transaction
   * takes along when no drainer holds the batch (0: a start never takes any).
   */
  INBOX_GROUP_SIZE: z.coerce.number().int().min(0).max(100_000).default(1000),

  /** openai | anthropic | local. Unset: openai when OPENAI_API_KEY or OPENAI_BASE_URL is set, else the offline analyzer. */
  LLM_PROVIDER: z.enum(["openai", "anthropic", "local"]).optional(),
  /** Default model; a batch's own `analysis.model` wins. */
  LLM_MODEL: z.string().min(1).optional(),
  OPENAI_API_KEY: z.string().min(1).optional(),
  /** Any OpenAI-compatible server: vLLM, Ollama, LM Studio, llama.cpp, OpenRouter, … */
  OPENAI_BASE_URL: z.string().url().optional(),
  ANTHROPIC_API_KEY: z.string().min(1).optional(),
  /** An Anthropic-compatible endpoint instead of Anthropic's own (the SDK's variable). */
  ANTHROPIC_BASE_URL: z.string().url().optional(),
  LLM_TIMEOUT_MS: z.coerce.number().int().min(100).default(120_000),
  LLM_MAX_RETRIES: z.coerce.number().int().min(0).max(20).default(5),
  /** Re-asks when the output is not valid JSON or does not match the batch's schema. */
  LLM_OUTPUT_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
  /** A JSON price table laid over the built-in one, entry by entry (see src/pricing/prices.json for the format). */
  LLM_PRICES_FILE: z.string().min(1).optional(),
  /** Limits shared by every worker process (through Redis); unset: follow the provider's rate-limit headers. */
  LLM_REQUESTS_PER_MINUTE: z.coerce.number().int().min(1).optional(),
  LLM_TOKENS_PER_MINUTE: z.coerce.number().int().min(1).optional(),
  /** How much of a minute's allowance may go at once; lower it for a provider that also enforces shorter periods. */
  LLM_RATE_BURST_SECONDS: z.coerce.number().min(0.1).max(60).default(60),

  /** Batch lane: most tasks of one batch inside provider batches at once (its analysis window). */
  LANE_WINDOW: z.coerce.number().int().min(1).max(1_000_000).default(100_000),
  /** Batch lane: most provider batches one batch has open at once. */
  LANE_MAX_OPEN: z.coerce.number().int().min(1).max(100).default(4),
  /** Batch lane: most requests per provider batch, below the provider's own limit (tests use it to force a split). */
  LANE_MAX_REQUESTS: z.coerce.number().int().min(1).optional(),
  /** Batch lane: first wait between two looks at an open provider batch; doubles while nothing changes, up to LANE_POLL_MAX_MS. */
  LANE_POLL_MS: z.coerce.number().int().min(50).default(10_000),
  LANE_POLL_MAX_MS: z.coerce.number().int().min(50).default(300_000),
  /** Batch lane: how often one task may be sent in a provider batch before an expired line fails it. */
  LANE_MAX_SUBMISSIONS: z.coerce.number().int().min(1).max(20).default(3),

  /** A secret of at least 32 characters: set, it turns authentication on and is itself an admin key. */
  ADMIN_API_KEY: z.preprocess((v) => (v === "" ? undefined : v), z.string().min(32, "must be at least 32 characters").optional()),
  /** `off` runs without authentication even on a non-loopback HOST (warned about at every start). */
  AUTH: z.enum(["auto", "off"]).default("auto"),
  /** Requests per minute per API key (per address without one), shared by all API processes, when keys are on or AUTH=off; 0 turns it off. */
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).default(600),
  /** Most batches of one tenant running at once; unset: only MAX_RUNNING_BATCHES. */
  MAX_RUNNING_BATCHES_PER_TENANT: z.coerce.number().int().min(1).optional(),
  /** Comma-separated origins allowed to call the API from a browser (CORS); unset: none. */
  CORS_ORIGINS: z
    .string()
    .optional()
    .transform((v) => (v ? v.split(",").map((o) => o.trim()).filter(Boolean) : []))
    .pipe(z.array(z.url())),
});

/** The default queue prefix for a database: its name, with anything but [A-Za-z0-9_-] made `_`. */
export function queuePrefixFor(databaseUrl: string): string {
  const name = (() => {
    try {
      return decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
    } catch {
      return "";
    }
  })();
  return name.replace(/[^A-Za-z0-9_-]/g, "_") || "tranche";
}

const withDerived = configSchema.transform((c) => ({ ...c, QUEUE_PREFIX: c.QUEUE_PREFIX ?? queuePrefixFor(c.DATABASE_URL) }));

export type Config = z.infer<typeof withDerived>;

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid configuration:\n  ${issues.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

/** Parses the environment (or any record of strings); throws a `ConfigError` naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = withDerived.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`));
  }
  return parsed.data;
}
