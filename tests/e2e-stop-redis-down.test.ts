// Stopping a process while Redis is down does not hang: a whole Tranche (`main.ts all`) on SIGTERM and a worker (`main.ts worker`) on SIGINT, each running with a private redis-server that is then stopped, exit within 10 s and say in their log why they did not wait for Redis.
import { spawn } from "node:child_process";
import path from "node:path";
import { freePort } from "./support/auth";
import { createTestDatabase, type TestDatabase } from "./support/db";
import { startPrivateRedis } from "./support/redis-server";

const ROOT = path.join(__dirname, "..");
const STOP_BOUND_MS = 10_000;
let db: TestDatabase;

// Real processes compile TypeScript as they start, which takes long on a busy machine.
jest.setTimeout(240_000);

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

async function stopWithRedisDown(role: "all" | "worker", signal: "SIGTERM" | "SIGINT") {
  const redis = await startPrivateRedis();
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "src", "main.ts"), role], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      QUEUE_PREFIX: `stop${role}`,
      LLM_PROVIDER: "local",
      LOG_LEVEL: "info",
      PORT: String(port),
      METRICS_PORT: String(port),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (output += c.toString()));
  let redisUp = true;
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.once("exit", (code) => resolve({ code, at: Date.now() })));
  try {
    const deadline = Date.now() + 120_000;
    while (!/Tranche (is listening|worker is running)/.test(output)) {
      if (child.exitCode !== null) throw new Error(`the process exited with ${child.exitCode}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`the process did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await redis.close();
    redisUp = false;
    // Long enough for every connection to have seen Redis go and to be trying to reconnect.
    await new Promise((r) => setTimeout(r, 1500));
    const stoppedAt = Date.now();
    child.kill(signal);
    const bound = new Promise<null>((resolve) => setTimeout(() => resolve(null), STOP_BOUND_MS + 5_000));
    const exit = await Promise.race([exited, bound]);
    return { exit, tookMs: exit ? exit.at - stoppedAt : Infinity, output };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
    if (redisUp) await redis.close();
  }
}

test.each([
  ["all", "SIGTERM"],
  ["worker", "SIGINT"],
] as const)("`%s` exits on %s within 10 s while Redis is down, saying why", async (role, signal) => {
  const { exit, tookMs, output } = await stopWithRedisDown(role, signal);
  process.stdout.write(`${role} stopped by ${signal} with Redis down in ${tookMs} ms\n`);
  expect(exit).not.toBeNull();
  expect(tookMs).toBeLessThan(STOP_BOUND_MS);
  expect(exit?.code).toBe(0);
  expect(output).toMatch(/Redis is unreachable/);
  expect(output).toMatch(/"msg":"stopped"/);
});
