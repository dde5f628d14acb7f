// Queues that would stall or be shared silently: a queue paused in Redis (as the dashboard does it) shows in /api/health and is logged; the default QUEUE_PREFIX is the database's name, and a second database refuses to start on a prefix another database owns.
import { randomBytes } from "node:crypto";
import request from "supertest";
import { loadConfig, queuePrefixFor } from "../src/config";
import { createApp } from "../src/server/app";
import { startBackground } from "../src/workers";
import { claimQueuePrefix, databaseIdentity, QueuePrefixTakenError } from "../src/workers/queue-owner";
import { createHarness, testConfig, testLogger } from "./support/harness";
import { createSystem, waitFor, type TestSystem } from "./support/system";

let s: TestSystem;
beforeAll(async () => {
  s = await createSystem();
});
afterAll(() => s.close());

test("a queue paused from the dashboard shows in /api/health until it is resumed", async () => {
  const app = createApp({ ...s.engine, config: testConfig, logger: testLogger, bodyLimit: "1mb", pausedQueues: () => s.background.queueWatch.paused() });
  const ok = await request(app).get("/api/health").expect(200);
  expect(ok.body).toMatchObject({ status: "ok", paused_queues: [], warnings: [] });
  await s.background.queues.analysis.pause();
  const degraded = await request(app).get("/api/health").expect(200);
  expect(degraded.body).toMatchObject({ status: "degraded", paused_queues: ["analysis"], warnings: [expect.stringMatching(/queue analysis is paused/)] });
  await s.background.queues.analysis.resume();
  await waitFor("the resume to show", async () => (await request(app).get("/api/health")).body.status === "ok");
});

test("the default queue prefix is the database's name", () => {
  expect(loadConfig({}).QUEUE_PREFIX).toBe("tranche");
  expect(loadConfig({ DATABASE_URL: "postgresql://u@h:5432/acme_prod" }).QUEUE_PREFIX).toBe("acme_prod");
  expect(loadConfig({ DATABASE_URL: "postgresql://u@h:5432/acme_prod", QUEUE_PREFIX: "mine" }).QUEUE_PREFIX).toBe("mine");
  expect(queuePrefixFor("postgresql://u@h/odd%20name.v2")).toBe("odd_name_v2");
});

test("a prefix owned by one database is refused to another; the owner may come back", async () => {
  const prefix = `tq${randomBytes(4).toString("hex")}`;
  try {
    await claimQueuePrefix(s.redis, prefix, "cluster-a/db1");
    await claimQueuePrefix(s.redis, prefix, "cluster-a/db1");
    await expect(claimQueuePrefix(s.redis, prefix, "cluster-a/db2")).rejects.toThrow(QueuePrefixTakenError);
  } finally {
    await s.redis.del(`${prefix}:owner`);
  }
});

test("a second installation on another database does not start on the first one's prefix", async () => {
  const other = await createHarness();
  try {
    expect(await databaseIdentity(other.db.prisma)).not.toBe(await databaseIdentity(s.db.prisma));
    const config = loadConfig({ ...s.env, DATABASE_URL: other.db.url });
    await expect(startBackground({ prisma: other.db.prisma, engine: other.engine, config, logger: testLogger, runWorkers: false })).rejects.toThrow(
      new RegExp(`QUEUE_PREFIX "${s.prefix}" belongs to database`),
    );
  } finally {
    await other.close();
  }
});
