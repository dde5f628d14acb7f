/**
 * Readiness: whether this process can do its work now. PostgreSQL must answer, Redis must
 * answer, and every migration in prisma/migrations must be recorded as applied in
 * `_prisma_migrations`. Each check has a deadline, so a hung dependency reads "not ready"
 * instead of hanging the probe.
 */
import type { Redis } from "ioredis";
import type { PrismaClient } from "./db";
import { readMigrations } from "./db";
import { withTimeout } from "./timeout";

export const READINESS_CHECKS = ["postgres", "redis", "migrations"] as const;
export type ReadinessCheck = (typeof READINESS_CHECKS)[number];

export interface CheckResult {
  ok: boolean;
  error?: string;
}

export interface Readiness {
  ready: boolean;
  checks: Record<ReadinessCheck, CheckResult>;
}

export interface ReadinessDeps {
  prisma: PrismaClient;
  redis: Redis;
  /** The migrations this build expects (default: prisma/migrations). */
  expectedMigrations?: string[];
  timeoutMs?: number;
}

export function createReadiness({ prisma, redis, expectedMigrations, timeoutMs = 2000 }: ReadinessDeps) {
  const expected = expectedMigrations ?? readMigrations().map((m) => m.name);

  const run = async (what: string, check: () => Promise<void>): Promise<CheckResult> => {
    try {
      await withTimeout(check(), timeoutMs, `${what} did not answer`);
      return { ok: true };
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
  };

  async function check(): Promise<Readiness> {
    const [postgres, redisCheck, migrations] = await Promise.all([
      run("PostgreSQL", async () => {
        await prisma.$queryRaw`SELECT 1`;
      }),
      run("Redis", async () => {
        // With maxRetriesPerRequest: null a command waits for the reconnect forever: ask only a live connection.
        if (redis.status !== "ready") throw new Error(`Redis connection is ${redis.status}`);
        await redis.ping();
      }),
      run("PostgreSQL", async () => {
        const rows = await prisma.$queryRaw<{ migration_name: string }[]>`
          SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`;
        const applied = new Set(rows.map((r) => r.migration_name));
        const missing = expected.filter((name) => !applied.has(name));
        if (missing.length) throw new Error(`not applied: ${missing.join(", ")}`);
      }),
    ]);
    const checks = { postgres, redis: redisCheck, migrations };
    return { ready: postgres.ok && redisCheck.ok && migrations.ok, checks };
  }

  return { check };
}

export type ReadinessProbe = ReturnType<typeof createReadiness>;
