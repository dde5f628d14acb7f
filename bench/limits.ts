/**
 * The limits scenario (not a test; CI does not run it): do all worker processes together use the
 * provider's rate limits fully without being refused?
 *
 * The fake OpenAI server enforces LIMIT_RPM requests and LIMIT_TPM tokens per minute (token buckets
 * of a minute's worth, as the providers describe theirs) with BENCH_LATENCY_MS latency. Two real
 * worker processes (`src/main.ts worker`) are started with LLM_REQUESTS_PER_MINUTE / LLM_TOKENS_PER_MINUTE
 * set to the same limits, on a fresh `tranche_bench_limits` database and a private Redis prefix; this
 * process runs the relay and reconciler. One batch with more documents than the run can analyse is
 * staged and run; after BENCH_LIMITS_SECONDS the batch is cancelled and the fake's request log read.
 *
 * Reported: requests and tokens per minute used, as a share of each limit, over the whole run and over
 * the steady part (after the first minute, whose full buckets allow a burst), and the share of
 * requests answered 429. Targets: ≥ 90% of the binding limit, < 1% 429. Writes bench/reports/limits-*.json.
 *
 *   npm run bench:limits                         # 600 RPM, 200k TPM, 150 s
 *   BENCH_LIMITS_SECONDS=120 LIMIT_RPM=300 npm run bench:limits
 *   BENCH_LIMITS_CONFIGURED=0 npm run bench:limits   # no limits configured: follow the fake's headers
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Redis } from "ioredis";
import { Client } from "pg";
import { loadConfig } from "../src/config";
import { createPrisma, ensureDatabase, migrate } from "../src/db";
import { createEngine } from "../src/engine";
import { createLogger } from "../src/logger";
import { startBackground } from "../src/workers";
import { startFakeOpenAI } from "../tests/support/fake-llm";

const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const RPM = num("LIMIT_RPM", 600);
const TPM = num("LIMIT_TPM", 200_000);
const SECONDS = num("BENCH_LIMITS_SECONDS", 150);
const LATENCY_MS = num("BENCH_LATENCY_MS", 300);
const WORKERS = num("BENCH_WORKERS", 2);
const CONFIGURED = process.env.BENCH_LIMITS_CONFIGURED !== "0";
const DB_URL = process.env.BENCH_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/tranche_bench_limits";
const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const PREFIX = `benchlim${randomBytes(4).toString("hex")}`;
/** Enough documents that demand exceeds the limits for the whole run. */
const DOCS = Math.ceil((RPM * (SECONDS / 60) + RPM) * 1.3);

const ANALYSIS = {
  instructions: "Summarize the document in one sentence and count its words.",
  output_schema: { type: "object", properties: { summary: { type: "string" }, words: { type: "integer" } }, required: ["summary", "words"] },
  max_tokens: 64,
  model: "gpt-4o-mini",
};

const WORDS = "contract party agreement term clause notice payment invoice delivery service supplier customer period renewal termination liability".split(" ");
/** About 230 tokens, so that a request (instructions, document, answer) is near TPM/RPM tokens and both limits bind. */
function documentText(i: number): string {
  const words = Array.from({ length: 200 }, (_, k) => WORDS[(i * 7 + k * 3) % WORDS.length]!);
  return `Document ${i}. ${words.join(" ")}.`;
}

async function freshDatabase() {
  const url = new URL(DB_URL);
  const name = url.pathname.slice(1);
  url.pathname = "/postgres";
  const admin = new Client({ connectionString: url.toString() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
  await admin.end();
  await ensureDatabase(DB_URL);
  await migrate(DB_URL);
  return async () => {
    const a = new Client({ connectionString: url.toString() });
    await a.connect();
    await a.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
    await a.end();
  };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

async function main() {
  const dropDatabase = await freshDatabase();
  const fake = await startFakeOpenAI({
    limits: { requestsPerMinute: RPM, tokensPerMinute: TPM },
    latencyMs: () => LATENCY_MS * (0.5 + Math.random()),
  });
  const env: Record<string, string> = {
    DATABASE_URL: DB_URL,
    REDIS_URL,
    QUEUE_PREFIX: PREFIX,
    LOG_LEVEL: "warn",
    DISPATCH_WINDOW: "128",
    STAGING_CONCURRENCY: "8",
    ANALYSIS_CONCURRENCY: "32",
    LLM_PROVIDER: "openai",
    OPENAI_BASE_URL: fake.url,
    OPENAI_API_KEY: "bench",
    ...(CONFIGURED && { LLM_REQUESTS_PER_MINUTE: String(RPM), LLM_TOKENS_PER_MINUTE: String(TPM) }),
  };
  const config = loadConfig(env);
  const logger = createLogger("warn");
  const prisma = createPrisma(DB_URL, 5);
  const engine = createEngine({ prisma, databaseUrl: DB_URL, poolSize: 5, logger, maxRunningBatches: 1 });
  const background = await startBackground({ prisma, engine, config, logger, runWorkers: false });
  const children: ChildProcess[] = [];
  const root = path.join(__dirname, "..");
  for (let i = 0; i < WORKERS; i++) {
    children.push(
      spawn(process.execPath, ["--import", "tsx", path.join(root, "src", "main.ts"), "worker"], {
        cwd: root,
        env: { ...process.env, ...env, OPENAI_API_KEY: `worker-${i}` },
        stdio: ["ignore", "ignore", "inherit"],
      }),
    );
  }
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  try {
    console.log(`limits: ${RPM} RPM, ${TPM} TPM enforced by the fake; ${WORKERS} worker processes; ${CONFIGURED ? "limits configured" : "no limits configured (headers)"}; ${SECONDS} s; ${DOCS} documents`);
    const batchId = await engine.service.createBatch({
      name: "limits",
      analysis: ANALYSIS,
      priority: 0,
      window: config.DISPATCH_WINDOW,
      stagingTolerance: 0,
      failureTolerance: 0.5,
      documents: Array.from({ length: DOCS }, (_, i) => ({ name: `doc-${String(i).padStart(5, "0")}.txt`, mimeType: "text/plain", content: Buffer.from(documentText(i)) })),
    });
    await engine.service.requestStateChange(batchId, "stage");
    for (;;) {
      const b = await prisma.batch.findUniqueOrThrow({ where: { id: batchId } });
      if (b.status === "STAGED") break;
      if (b.status !== "STAGING") throw new Error(`staging ended in ${b.status}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    console.log("  staged; running");
    await engine.service.requestStateChange(batchId, "run");
    while (fake.requests.length === 0) await new Promise((r) => setTimeout(r, 50));
    const t0 = fake.requests[0]!.at;
    for (let s = 15; s <= SECONDS; s += 15) {
      await new Promise((r) => setTimeout(r, t0 + s * 1000 - Date.now()));
      const sent = fake.requests.filter((r) => r.at < t0 + s * 1000);
      console.log(`  ${s}s: ${sent.filter((r) => r.status === 200).length} answered, ${sent.filter((r) => r.status === 429).length} refused`);
    }
    const end = t0 + SECONDS * 1000;
    await engine.service.requestStateChange(batchId, "cancel");

    const within = (from: number) => fake.requests.filter((r) => r.at >= from && r.at < end);
    const measure = (from: number) => {
      const sent = within(from);
      const answered = sent.filter((r) => r.status === 200);
      const minutes = (end - from) / 60_000;
      const tokens = answered.reduce((n, r) => n + (r.usage ? r.usage.prompt + r.usage.completion : 0), 0);
      return {
        seconds: (end - from) / 1000,
        requests: sent.length,
        answered: answered.length,
        refused429: sent.filter((r) => r.status === 429).length,
        requestsPerMinute: Math.round(answered.length / minutes),
        tokensPerMinute: Math.round(tokens / minutes),
        shareOfRpm: answered.length / minutes / RPM,
        shareOfTpm: tokens / minutes / TPM,
        share429: sent.length ? sent.filter((r) => r.status === 429).length / sent.length : 0,
      };
    };
    const whole = measure(t0);
    const steady = measure(t0 + Math.min(60_000, (SECONDS * 1000) / 2));
    const rows = [
      ["", "whole run", "steady (after the first minute)"],
      ["seconds", whole.seconds, steady.seconds],
      ["requests sent", whole.requests, steady.requests],
      ["answered 200", whole.answered, steady.answered],
      ["answered 429", whole.refused429, steady.refused429],
      ["requests/min (share of RPM)", `${whole.requestsPerMinute} (${pct(whole.shareOfRpm)})`, `${steady.requestsPerMinute} (${pct(steady.shareOfRpm)})`],
      ["tokens/min (share of TPM)", `${whole.tokensPerMinute} (${pct(whole.shareOfTpm)})`, `${steady.tokensPerMinute} (${pct(steady.shareOfTpm)})`],
      ["share of requests 429", pct(whole.share429), pct(steady.share429)],
    ];
    for (const row of rows) console.log(`  ${String(row[0]).padEnd(30)} ${String(row[1]).padEnd(22)} ${row[2]}`);
    const binding = Math.max(steady.shareOfRpm, steady.shareOfTpm);
    const ok = binding >= 0.9 && whole.share429 < 0.01;
    console.log(`  binding limit used (steady): ${pct(binding)} (target ≥ 90%); 429s: ${pct(whole.share429)} (target < 1%) → ${ok ? "met" : "NOT met"}`);
    const dir = path.join(root, "bench", "reports");
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `limits-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
    writeFileSync(file, JSON.stringify({ settings: { RPM, TPM, SECONDS, LATENCY_MS, WORKERS, CONFIGURED, DOCS }, whole, steady, met: ok }, null, 2));
    console.log(`  report: ${path.relative(root, file)}`);
    process.exitCode = ok ? 0 : 1;
  } finally {
    await Promise.all(children.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : (c.once("exit", resolve), c.kill("SIGTERM"))))));
    await background.close();
    await engine.close();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${PREFIX}:*`, "COUNT", 1000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
    await redis.quit();
    await fake.close();
    await prisma.$disconnect();
    await dropDatabase();
  }
}

main()
  .then(() => {
    // Everything is closed; if a handle still keeps the process alive, leave anyway.
    setTimeout(() => process.exit(process.exitCode ?? 0), 5000).unref();
  })
  .catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
