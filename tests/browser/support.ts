/**
 * A real Tranche for browser tests: the engine on a private database (tests/support/harness),
 * the UI built fresh from ui/ into a temporary folder (so a test never sees a stale bundle),
 * served with the API, the live stream and the visualizer on port 0; and headless Debian Chromium driven by
 * playwright-core. Without /usr/bin/chromium the browser tests skip, saying why.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { createKeyStore, type KeyStore } from "../../src/auth/api-keys";
import { createAuth } from "../../src/auth/guard";
import { resolveAuthMode } from "../../src/auth/mode";
import { loadConfig } from "../../src/config";
import { createQueues } from "../../src/workers/queues";
import { redisUrl } from "../support/urls";
import { createLiveStream } from "../../src/server/live";
import { createTrancheApp } from "../../src/server/tranche-app";
import { ensureUiBuilt } from "../../src/server/ui";
import { createHarness, testConfig, testLogger, type Harness } from "../support/harness";

export const CHROMIUM = "/usr/bin/chromium";
export const ARTIFACTS = path.join(__dirname, "..", "..", "test-artifacts");

/** `describe`, or `describe.skip` with the reason in its name when Chromium is not installed. */
export function describeInBrowser(name: string, body: () => void): void {
  if (existsSync(CHROMIUM)) {
    describe(name, body);
    return;
  }
  process.stderr.write(`Skipping browser tests "${name}": ${CHROMIUM} is absent (apt-get install -y chromium).\n`);
  describe.skip(`${name} (skipped: ${CHROMIUM} is absent; apt-get install -y chromium)`, body);
}

export interface Tranche {
  url: string;
  harness: Harness;
  driver: { service: Harness["engine"]["service"]; prisma: Harness["db"]["prisma"] };
  keys: KeyStore;
  /** Stops the HTTP server alone, as a browser sees a crashed server; the database stays for `close`. */
  stop(): Promise<void>;
  close(): Promise<void>;
}

/** `env` configures the server as the environment would (e.g. ADMIN_API_KEY turns keys on). */
export async function startTranche(env: Record<string, string> = {}): Promise<Tranche> {
  const distDir = mkdtempSync(path.join(os.tmpdir(), "tranche-ui-"));
  const harness = await createHarness();
  const closers: (() => Promise<void>)[] = [];
  try {
    if (!(await ensureUiBuilt(distDir, testLogger))) throw new Error("the UI did not build: run `npm run ui:build` to see why");
    const { engine } = harness;
    const live = await createLiveStream({ databaseUrl: harness.db.url, prisma: harness.db.prisma, logger: testLogger });
    const redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
    const prefix = `tb${randomBytes(4).toString("hex")}`;
    const queues = createQueues(redis, prefix);
    closers.push(async () => {
      await queues.close();
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    });
    const config = { ...loadConfig({ BODY_LIMIT: "5mb", QUEUE_PREFIX: prefix, ...env }), ...testConfig };
    const keys = createKeyStore({ prisma: harness.db.prisma });
    const auth = createAuth({ mode: resolveAuthMode(config), keys });
    const app = createTrancheApp({ engine, config, logger: testLogger, auth, keys, live, queues: queues.all, redis, distDir });
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, "127.0.0.1", () => resolve(s));
    });
    const { port } = server.address() as AddressInfo;
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      await live.close();
      await stopServer(server);
    };
    return {
      url: `http://127.0.0.1:${port}`,
      harness,
      driver: { service: engine.service, prisma: harness.db.prisma },
      keys,
      stop,
      async close() {
        await stop();
        for (const close of closers) await close();
        await harness.close();
        rmSync(distDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const close of closers) await close();
    await harness.close();
    rmSync(distDir, { recursive: true, force: true });
    throw err;
  }
}

/** Stops listening and drops open connections (keep-alive fetches, event streams) so `close` finishes now. */
function stopServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
