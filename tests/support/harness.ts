/** Builds the engine and the Express app on a private database, as a test file needs them. */
import { createEngine, type EngineDeps } from "../../src/engine";
import { createLogger } from "../../src/logger";
import { createApp } from "../../src/server/app";
import { createTestDatabase, type TestDatabase } from "./db";

export const testLogger = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");

export const testConfig = {
  MAX_RUNNING_BATCHES: 1,
  DISPATCH_WINDOW: 4,
  STAGING_TOLERANCE: 0,
  FAILURE_TOLERANCE: 0,
  MAX_DOCUMENT_BYTES: 1024 * 1024,
  UPLOAD_LIMIT: "64mb",
  MAX_FILES_PER_REQUEST: 1000,
  MAX_ARCHIVE_DOCUMENTS: 100_000,
  MAX_ARCHIVE_BYTES: "1gb",
  LANE_WINDOW: 1000,
};

export interface Harness {
  db: TestDatabase;
  engine: ReturnType<typeof createEngine>;
  app: ReturnType<typeof createApp>;
  /** Another engine on the same database, as a second process would have it. */
  newEngine(extra?: Partial<EngineDeps>): ReturnType<typeof createEngine>;
  close(): Promise<void>;
}

export async function createHarness(
  options: { maxRunningBatches?: number; bodyLimit?: string; database?: TestDatabase } & Partial<EngineDeps> = {},
): Promise<Harness> {
  const db = options.database ?? (await createTestDatabase());
  const maxRunningBatches = options.maxRunningBatches ?? testConfig.MAX_RUNNING_BATCHES;
  const engines: ReturnType<typeof createEngine>[] = [];
  const track = (e: ReturnType<typeof createEngine>) => (engines.push(e), e);
  const newEngine = (extra: Partial<EngineDeps> = {}) =>
    track(createEngine({ prisma: db.newClient(), databaseUrl: db.url, logger: testLogger, maxRunningBatches, pricing: options.pricing, fingerprint: options.fingerprint, ...extra }));
  const engine = track(
    createEngine({
      prisma: db.prisma,
      databaseUrl: db.url,
      logger: testLogger,
      maxRunningBatches,
      maxRunningBatchesPerTenant: options.maxRunningBatchesPerTenant,
      beforeCommit: options.beforeCommit,
      pricing: options.pricing,
      fingerprint: options.fingerprint,
    }),
  );
  const app = createApp({
    ...engine,
    logger: testLogger,
    bodyLimit: options.bodyLimit ?? "1mb",
    config: { ...testConfig, MAX_RUNNING_BATCHES: maxRunningBatches },
  });
  return {
    db,
    engine,
    app,
    newEngine,
    async close() {
      await Promise.all(engines.map((e) => e.close()));
      await db.drop();
    },
  };
}
