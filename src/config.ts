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
  /** PostgreSQL, the source of truth. The database is created and migrated at start when missing. */
  DATABASE_URL: z.string().url().default("postgresql://postgres@127.0.0.1:5432/tranche"),
  /** Connections per process. */
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  /** Redis for BullMQ. It holds no state that PostgreSQL cannot rebuild. */
  REDIS_URL: z.string().url().default("redis://127.0.0.1:6379"),
  /** Prefix of every BullMQ key, so that several Tranche installs can share one Redis. */
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default("tranche"),
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
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid configuration:\n  ${issues.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

/** Parses the environment (or any record of strings); throws a `ConfigError` naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`));
  }
  return parsed.data;
}
