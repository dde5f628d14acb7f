/**
 * Sends hostile requests to a Tranche server and reports what came back.
 *
 *   npm run fuzz                                  # starts its own server on a private database
 *   npm run fuzz -- --url http://127.0.0.1:3000   # against a running server
 *   npm run fuzz -- --requests 20000 --seed 42 --concurrency 8
 *
 * Inputs: --url (default: start `src/main.ts` on a fresh database `tranche_fuzz_<random>`,
 * the offline analyzer, a free port; dropped, with its Redis keys, at the end), --requests
 * (10000), --seed (random), --concurrency (4). Requests are generated for every route of the
 * API (walked from the Express router) by tests/support/hostile-requests.ts, aimed at real
 * batches the script creates first.
 * Output: the figures — requests, answers by status, 5xx, refusals without code/error,
 * transport errors, and whether the server was healthy after (health answered 200 within a
 * second and a new batch could be created and read). Exit 0 when there was no 5xx, every
 * refusal was explained and the server was healthy; 1 otherwise; 2 on bad arguments.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { Redis } from "ioredis";
import { Client } from "pg";
import { loadConfig } from "../src/config";
import { createLogger } from "../src/logger";
import { createApp } from "../src/server/app";
import type { RoutesDeps } from "../src/server/routes";
import { answerProblems, describeRequest, hostileRequests, listRoutes, send, type HostileRequest, type Route } from "../tests/support/hostile-requests";

interface Options {
  url?: string;
  requests: number;
  seed: number;
  concurrency: number;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { requests: 10_000, seed: Math.floor(Math.random() * 2 ** 31), concurrency: 4 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) usage(`${flag} needs a value`);
    if (flag === "--url") options.url = value.replace(/\/$/, "");
    else if (flag === "--requests" || flag === "--seed" || flag === "--concurrency") {
      const n = Number(value);
      if (!Number.isInteger(n) || n < (flag === "--seed" ? 0 : 1)) usage(`${flag} must be a positive integer`);
      options[flag.slice(2) as "requests" | "seed" | "concurrency"] = n;
    } else usage(`unknown option ${flag}`);
  }
  return options;
}

function usage(problem: string): never {
  process.stderr.write(`${problem}\nusage: npm run fuzz -- [--url URL] [--requests N] [--seed S] [--concurrency C]\n`);
  process.exit(2);
}

/**
 * The API's routes, walked from an app built only to be walked (its handlers never run, so it
 * needs no database), plus the live stream, which main.ts mounts from its own router.
 */
function apiRoutes(): Route[] {
  const unused = {} as RoutesDeps["service"];
  const app = createApp({
    service: unused,
    queries: {} as RoutesDeps["queries"],
    uploads: {} as RoutesDeps["uploads"],
    config: loadConfig({}),
    logger: createLogger("silent"),
    bodyLimit: "1mb",
  });
  return [...listRoutes(app), { method: "GET", path: "/api/events" }];
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

interface OwnServer {
  url: string;
  logFile: string;
  stop(): Promise<void>;
}

/** `src/main.ts` (API and workers, offline analyzer) on a database of its own. */
async function startOwnServer(): Promise<OwnServer> {
  const base = new URL(process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres");
  const name = `tranche_fuzz_${randomBytes(4).toString("hex")}`;
  const databaseUrl = new URL(base.toString());
  databaseUrl.pathname = `/${name}`;
  const adminUrl = new URL(base.toString());
  adminUrl.pathname = "/postgres";
  const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  const port = await freePort();
  const logFile = path.join(mkdtempSync(path.join(os.tmpdir(), "tranche-fuzz-")), "server.log");
  const log = createWriteStream(logFile);
  const root = path.join(__dirname, "..");
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", path.join(root, "src", "main.ts")], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl.toString(),
      REDIS_URL: redisUrl,
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
      LLM_PROVIDER: "local",
      STAGING_CONCURRENCY: "2",
      ANALYSIS_CONCURRENCY: "2",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}; see ${logFile}`);
    try {
      if ((await fetch(`${url}/api/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the server did not answer within 180 s; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    logFile,
    async stop() {
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited;
      const admin = new Client({ connectionString: adminUrl.toString() });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
      // The server's queue prefix is its database's name.
      const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", `${name}:*`, "COUNT", 1000);
        if (keys.length) await redis.del(...keys);
        cursor = next;
      } while (cursor !== "0");
      await redis.quit();
    },
  };
}

/** Real batches for the requests to aim at: saved ones, and staged ones that workers move along. */
async function seedBatches(url: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < 16; i++) {
    const res = await fetch(`${url}/api/batches/${i % 2 ? "stage" : "save"}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        name: `fuzz target ${i}`,
        analysis: { instructions: "Summarise.", ...(i % 4 === 1 && { output_schema: { type: "object" } }) },
        documents: [{ name: "a.txt", content: `Document ${i}. Some text to analyse.` }, { name: "b.md", content: "# Title\n\nBody." }],
      }),
    });
    if (res.status !== 201) throw new Error(`seeding a batch answered ${res.status}: ${await res.text()}`);
    ids.push(((await res.json()) as { batch: { id: string } }).batch.id);
  }
  return ids;
}

/** Health answered 200 within a second, and a batch can still be created and read. */
async function healthy(url: string): Promise<{ ok: boolean; detail: string }> {
  const started = Date.now();
  const health = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(1000) }).catch((err: unknown) => err as Error);
  if (health instanceof Error || !health.ok) return { ok: false, detail: `health: ${health instanceof Error ? health.message : health.status}` };
  const ms = Date.now() - started;
  const created = await fetch(`${url}/api/batches/save`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "after the fuzz", analysis: { instructions: "Summarise." } }),
  });
  if (created.status !== 201) return { ok: false, detail: `create after the fuzz answered ${created.status}` };
  const { batch } = (await created.json()) as { batch: { id: string } };
  const read = await fetch(`${url}/api/batches/${batch.id}`);
  return { ok: read.ok, detail: `health 200 in ${ms} ms; create 201; read ${read.status}` };
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const own = options.url ? undefined : await startOwnServer();
  const url = options.url ?? own!.url;
  let failed = false;
  try {
    const ids = await seedBatches(url);
    const routes = apiRoutes();
    const arbitrary = hostileRequests(routes, ids, new URL(url).host);
    const byStatus = new Map<number, number>();
    const problems: string[] = [];
    const transport: string[] = [];
    let sent = 0;
    const started = Date.now();
    process.stdout.write(`fuzzing ${url}: ${options.requests} requests over ${routes.length} routes, seed ${options.seed}, concurrency ${options.concurrency}\n`);
    const batchSize = 500;
    for (let offset = 0; offset < options.requests; offset += batchSize) {
      const requests: HostileRequest[] = fc.sample(arbitrary, { numRuns: Math.min(batchSize, options.requests - offset), seed: options.seed + offset });
      let next = 0;
      await Promise.all(
        Array.from({ length: options.concurrency }, async () => {
          while (next < requests.length) {
            const req = requests[next++]!;
            try {
              const res = await send(url, req);
              byStatus.set(res.status, (byStatus.get(res.status) ?? 0) + 1);
              problems.push(...answerProblems(req, res));
            } catch (err) {
              transport.push(`${describeRequest(req)}: ${err instanceof Error ? err.message : String(err)}`);
            }
            sent++;
          }
        }),
      );
      if ((offset / batchSize) % 4 === 3) process.stdout.write(`  ${sent} sent\n`);
    }
    const seconds = (Date.now() - started) / 1000;
    const fiveXX = [...byStatus].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
    const health = await healthy(url);
    process.stdout.write(`\nrequests: ${sent} in ${seconds.toFixed(1)} s (${(sent / seconds).toFixed(0)}/s)\n`);
    process.stdout.write(`by status: ${[...byStatus].sort((a, b) => a[0] - b[0]).map(([s, c]) => `${s}: ${c}`).join(", ")}\n`);
    process.stdout.write(`5xx: ${fiveXX}\n`);
    process.stdout.write(`refusals without code/error: ${problems.filter((p) => !/^5\d\d /.test(p)).length}\n`);
    process.stdout.write(`transport errors: ${transport.length}\n`);
    for (const p of [...problems, ...transport].slice(0, 10)) process.stdout.write(`  ${p}\n`);
    if (own) {
      const unhandled = readFileSync(own.logFile, "utf8").split("\n").filter((l) => l.includes('"unhandled error"')).length;
      process.stdout.write(`server log: ${unhandled} unhandled errors (${own.logFile})\n`);
      if (unhandled) failed = true;
    }
    process.stdout.write(`server healthy after: ${health.ok ? "yes" : "NO"} (${health.detail})\n`);
    failed ||= fiveXX > 0 || problems.length > 0 || transport.length > 0 || !health.ok;
  } finally {
    await own?.stop();
  }
  process.exit(failed ? 1 : 0);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
