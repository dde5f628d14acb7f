// /readyz names what is not ready — Redis while a private redis-server is stopped (200 again once it is back), migrations missing from _prisma_migrations — while /healthz stays 200.
import request from "supertest";
import { createReadiness } from "../src/readiness";
import { createOpsSystem, type OpsSystem } from "./support/ops-app";
import { startPrivateRedis } from "./support/redis-server";
import { waitFor } from "./support/system";

// From the port range kept for this file's private servers, fixed so that clients reconnect to the restarted one.
const REDIS_PORT = 6410;

let s: OpsSystem;
let redis: Awaited<ReturnType<typeof startPrivateRedis>> | undefined;
beforeAll(async () => {
  redis = await startPrivateRedis({ port: REDIS_PORT });
  s = await createOpsSystem({ env: { REDIS_URL: redis.url } });
  // BullMQ prints a queue's connection errors to the console unless someone listens: the outage is the point here.
  for (const q of s.background.queues.all) q.on("error", () => undefined);
});
afterAll(async () => {
  await s.close();
  await redis?.close();
});

test("/readyz answers 503 naming Redis while it is down and 200 once it is back; /healthz stays 200", async () => {
  await request(s.opsApp).get("/readyz").expect(200);

  await redis?.close();
  redis = undefined;
  const down = await waitFor("/readyz to notice Redis is gone", async () => {
    const res = await request(s.opsApp).get("/readyz");
    return res.status === 503 ? res : undefined;
  });
  expect(down.body).toMatchObject({ success: false, code: "not_ready", status: "not_ready", not_ready: ["redis"] });
  expect(down.body.error).toMatch(/^Not ready: redis \(/);
  expect(down.body.checks).toMatchObject({ postgres: { ok: true }, migrations: { ok: true }, redis: { ok: false } });
  await request(s.opsApp).get("/healthz").expect(200, { success: true, status: "ok" });

  redis = await startPrivateRedis({ port: REDIS_PORT });
  const up = await waitFor("/readyz to see Redis again", async () => {
    const res = await request(s.opsApp).get("/readyz");
    return res.status === 200 ? res : undefined;
  });
  expect(up.body).toMatchObject({ status: "ready", checks: { redis: { ok: true } } });
  await request(s.opsApp).get("/healthz").expect(200);
}, 120_000);

test("a migration the build has but the database lacks makes it not ready, by name", async () => {
  const readiness = createReadiness({
    prisma: s.db.prisma,
    redis: s.background.connection,
    expectedMigrations: ["20260101000000_init_that_never_ran"],
  });
  await waitFor("Redis to be back", async () => s.background.connection.status === "ready");
  const { ready, checks } = await readiness.check();
  expect(ready).toBe(false);
  expect(checks.migrations).toEqual({ ok: false, error: "not applied: 20260101000000_init_that_never_ran" });
  expect(checks.postgres.ok).toBe(true);
});
