/**
 * `tranche`: Tranche from the shell, against a running server (`TRANCHE_URL`, default
 * http://127.0.0.1:3000; `TRANCHE_API_KEY` when the server requires keys).
 *
 * Exit codes: 0 done (and, for `submit --watch`, COMPLETED); 1 FAILED, CANCELLED or
 * FAILED_STAGING, or the server refused (its message is printed); 2 a usage error.
 * `--json` prints machine-readable output on every command.
 */
import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { SingleBar } from "cli-progress";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { ApiError, clientOptionsFromEnv, createClient, type BatchView } from "./client";
import { collectDocuments, submitBatch } from "./submit";
import { TERMINAL, watchBatch } from "./watch";

const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** A usage error found after parsing (e.g. two options that exclude each other). */
class UsageError extends Error {}

const client = createClient(clientOptionsFromEnv());
const program = new Command("tranche");

const json = (): boolean => program.opts<{ json?: boolean }>().json === true;
const print = (value: unknown, human: () => string) => {
  process.stdout.write(json() ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
};
const say = (message: string) => {
  if (!json()) process.stderr.write(`${message}\n`);
};

const ratio = (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError("expected a number from 0 to 1");
  return n;
};
const dollars = (value: string) => {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError("expected an amount in USD, 0 or more");
  return n;
};
const usd = (n: number | null | undefined) => (n === null || n === undefined ? "unknown" : `$${n.toFixed(n >= 1 ? 2 : 4)}`);

/** What the batch will cost at most, what it spent, and its budget. */
function costLines(b: BatchView): string[] {
  const e = b.estimate;
  const u = b.usage;
  return [
    ...(e ? [`  estimate   at most ${usd(e.cost_usd_max)} on ${e.model}: ${e.requests} requests, ${e.input_tokens} input tokens${e.note ? ` (${e.note})` : ""}`] : []),
    ...(u ? [`  spent      ${usd(u.cost_usd)}${b.budget_usd != null ? ` of a ${usd(b.budget_usd)} budget` : ""}: ${u.requests} requests, ${u.input_tokens} input, ${u.output_tokens} output tokens`] : []),
    ...(b.pause_reason === "budget" ? ["  paused by  its budget: raise it (tranche budget <id> <usd>) and resume"] : []),
  ];
}

const positive = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected a positive integer");
  return n;
};

const progressLine = (b: BatchView) => {
  const p = b.progress;
  return `${p.succeeded} succeeded, ${p.failed} failed, ${p.cancelled} cancelled, ${p.pending + p.running} to go of ${p.total}`;
};

function describe(b: BatchView): string {
  return [
    `${b.name}  ${b.id}`,
    `  status     ${b.status}${b.substate ? ` (${b.substate}${b.queue_position ? `, position ${b.queue_position}` : ""})` : ""}`,
    `  version    ${b.version}, run ${b.run_id}, ${b.document_count} documents`,
    `  staging    ${b.staging.succeeded} staged, ${b.staging.failed} failed of ${b.staging.total}`,
    `  analysis   ${progressLine(b)}`,
    ...costLines(b),
    `  actions    ${b.allowed_actions.join(", ") || "none"}`,
    ...(b.last_error ? [`  last error ${b.last_error}`] : []),
    `  updated    ${b.updated_at}`,
  ].join("\n");
}

/** The exit code a settled batch means. */
const exitFor = (b: BatchView) => (b.status === "COMPLETED" ? EXIT.ok : TERMINAL.includes(b.status as (typeof TERMINAL)[number]) ? EXIT.failed : EXIT.ok);

program
  .description("Submit folders of documents to Tranche, watch them, and fetch their results")
  .option("--json", "machine-readable output (JSON) for scripts")
  .showHelpAfterError()
  .exitOverride()
  .addHelpText("after", "\nEnvironment: TRANCHE_URL (default http://127.0.0.1:3000), TRANCHE_API_KEY (sent as Authorization: Bearer).");

program
  .command("submit")
  .description("upload a folder or files as a new batch, stage it and run it")
  .argument("<paths...>", "a folder (walked) or files")
  .requiredOption("--name <name>", "the batch's name")
  .option("--instructions <text>", "what to ask of each document")
  .option("--instructions-file <path>", "read the instructions from a file")
  .option("--schema <file.json>", "JSON Schema the output of each document must match")
  .option("--model <model>", "the model (default: the server's)")
  .addOption(new Option("--provider <provider>", "the LLM provider").choices(["openai", "anthropic", "local"]))
  .option("--staging-tolerance <ratio>", "share of documents that may fail staging", ratio)
  .option("--failure-tolerance <ratio>", "share of documents whose analysis may fail", ratio)
  .option("--budget <usd>", "most the batch may cost: it pauses itself before a request could pass it", dollars)
  .option("--page-files <n>", "most files per upload request", positive, 100)
  .option("--page-mb <n>", "most megabytes per upload request", positive, 16)
  .option("--watch", "show a live progress bar until the batch ends; exit 0 only if it COMPLETED")
  .action(async (paths: string[], o: Record<string, unknown>) => {
    if ((o.instructions === undefined) === (o.instructionsFile === undefined)) throw new UsageError("give exactly one of --instructions or --instructions-file");
    const instructions = o.instructionsFile ? await readFile(o.instructionsFile as string, "utf8") : (o.instructions as string);
    let outputSchema: unknown;
    if (o.schema) {
      try {
        outputSchema = JSON.parse(await readFile(o.schema as string, "utf8"));
      } catch (err) {
        throw new UsageError(`--schema ${o.schema as string}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const analysis = {
      instructions,
      ...(outputSchema !== undefined && { output_schema: outputSchema }),
      ...(o.model !== undefined && { model: o.model }),
      ...(o.provider !== undefined && { provider: o.provider }),
      ...(o.stagingTolerance !== undefined && { staging_tolerance: o.stagingTolerance }),
      ...(o.failureTolerance !== undefined && { failure_tolerance: o.failureTolerance }),
      ...(o.budget !== undefined && { budget_usd: o.budget }),
    };
    const collected = await collectDocuments(paths);
    for (const s of collected.skipped) say(`skipping ${s.path}: ${s.why}`);
    if (!collected.files.length) throw new UsageError(`no documents found in ${paths.join(", ")}`);
    const submitted = await submitBatch(client, collected, {
      name: o.name as string,
      analysis,
      pageFiles: o.pageFiles as number,
      pageBytes: (o.pageMb as number) * 1024 * 1024,
      report: say,
    });
    let batch = submitted.batch;
    if (o.watch && !TERMINAL.includes(batch.status as (typeof TERMINAL)[number])) {
      const bar = json() ? undefined : new SingleBar({ format: " {bar} {percentage}% | {value}/{total} | {status} | {detail}", hideCursor: true, stream: process.stderr });
      bar?.start(Math.max(batch.progress.total, 1), 0, { status: batch.status, detail: "" });
      batch = await watchBatch(client, batch.id, {
        until: TERMINAL,
        onChange: (b) => {
          const p = b.progress;
          bar?.setTotal(Math.max(p.total, 1));
          bar?.update(p.succeeded + p.failed + p.cancelled, { status: b.status, detail: `${p.succeeded} ok, ${p.failed} failed` });
        },
      });
      bar?.stop();
    }
    const summary = { batch, uploaded: submitted.uploaded, skipped: submitted.skipped };
    print(summary, () =>
      [
        `${batch.status}: ${batch.name} (${batch.id})`,
        `  documents  ${submitted.uploaded} uploaded, ${submitted.skipped} skipped; ${batch.staging.succeeded} staged, ${batch.staging.failed} failed staging`,
        `  analysis   ${progressLine(batch)}`,
        ...costLines(batch),
        ...(batch.last_error ? [`  last error ${batch.last_error}`] : []),
        ...(o.watch ? [] : [`  follow it with: tranche show ${batch.id}`]),
      ].join("\n"),
    );
    process.exitCode = o.watch || TERMINAL.includes(batch.status as (typeof TERMINAL)[number]) ? exitFor(batch) : EXIT.ok;
  });

program
  .command("ls")
  .description("list batches, newest first")
  .option("--status <states>", "only these states, comma-separated (e.g. ANALYZING,PAUSED)")
  .option("--limit <n>", "how many", positive, 50)
  .action(async (o: { status?: string; limit: number }) => {
    const query = new URLSearchParams({ limit: String(o.limit), ...(o.status && { status: o.status }) });
    const list = await client.get<{ batches: BatchView[]; total: number }>(`/api/batches?${query}`);
    print(list, () =>
      list.batches.length
        ? [
            `${"ID".padEnd(36)}  ${"STATUS".padEnd(14)}  ${"PROGRESS".padEnd(12)}  NAME`,
            ...list.batches.map((b) => `${b.id}  ${b.status.padEnd(14)}  ${`${b.progress.succeeded + b.progress.failed}/${b.progress.total}`.padEnd(12)}  ${b.name}`),
            `${list.batches.length} of ${list.total}`,
          ].join("\n")
        : "no batches",
    );
  });

program
  .command("show")
  .description("one batch: state, progress, allowed actions")
  .argument("<id>")
  .action(async (id: string) => {
    const { batch } = await client.get<{ batch: BatchView }>(`/api/batches/${encodeURIComponent(id)}`);
    print(batch, () => describe(batch));
  });

program
  .command("budget")
  .description("set a batch's budget in USD (none: remove it); raise it and resume a batch its budget paused")
  .argument("<id>")
  .argument("<usd>", "the new budget, or none")
  .action(async (id: string, amount: string) => {
    const budget = amount === "none" ? null : Number(amount);
    if (budget !== null && (amount.trim() === "" || !Number.isFinite(budget) || budget < 0)) throw new UsageError(`budget: expected an amount in USD or none, got "${amount}"`);
    const answer = await client.post<{ batch: BatchView }>(`/api/batches/${encodeURIComponent(id)}/budget`, { budget_usd: budget });
    print(answer, () => `budget: ${budget === null ? "none" : usd(budget)}\n${describe(answer.batch)}`);
  });

for (const action of ["pause", "resume", "cancel", "rerun", "retry-failed", "reset"] as const) {
  program
    .command(action)
    .description(`${action} a batch`)
    .argument("<id>")
    .option("--reason <text>", "kept in the batch's history")
    .action(async (id: string, o: { reason?: string }) => {
      const answer = await client.post<{ previous_state: string; current_state: string; batch: BatchView }>(`/api/batches/${encodeURIComponent(id)}/action`, {
        action,
        ...(o.reason && { context: { reason: o.reason } }),
      });
      print(answer, () => `${action}: ${answer.previous_state} → ${answer.current_state}\n${describe(answer.batch)}`);
    });
}

program
  .command("results")
  .description("download a batch's results")
  .argument("<id>")
  .addOption(new Option("--format <format>", "json, jsonl or csv").choices(["json", "jsonl", "csv"]).default("json"))
  .option("-o, --output <file>", "write to this file (default: stdout)")
  .action(async (id: string, o: { format: string; output?: string }) => {
    const res = await client.send("GET", `/api/batches/${encodeURIComponent(id)}/results?format=${o.format}`);
    if (!res.body) throw new ApiError("the server sent no results", res.status, "empty");
    const body = Readable.fromWeb(res.body as import("node:stream/web").ReadableStream<Uint8Array>);
    if (o.output) {
      await pipeline(body, createWriteStream(o.output));
      say(`wrote ${o.output}`);
      if (json()) print({ batch_id: id, format: o.format, file: o.output }, () => "");
    } else {
      await pipeline(body, process.stdout, { end: false });
    }
  });

program
  .command("history")
  .description("a batch's audit trail: every accepted, refused or ignored request")
  .argument("<id>")
  .option("--limit <n>", "most entries", positive, 1000)
  .action(async (id: string, o: { limit: number }) => {
    const { history } = await client.get<{ history: { seq: number; outcome: string; event_type: string; from: string; to: string; version: number; reason: string | null; created_at: string }[] }>(
      `/api/batches/${encodeURIComponent(id)}/history?limit=${o.limit}`,
    );
    print(history, () =>
      history
        .map((h) => `${String(h.seq).padStart(5)}  ${h.created_at}  ${h.outcome.padEnd(16)}  ${h.event_type.padEnd(22)}  ${h.from || "-"} → ${h.to}${h.reason ? `  (${h.reason})` : ""}`)
        .join("\n"),
    );
  });

async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return Number(process.exitCode ?? EXIT.ok);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are not errors; everything else commander rejects is a usage error.
      return err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n`);
      return EXIT.usage;
    }
    const message = err instanceof ApiError ? `${err.message}${err.code && err.status ? ` (${err.status} ${err.code})` : ""}` : err instanceof Error ? err.message : String(err);
    if (json()) process.stdout.write(`${JSON.stringify({ success: false, error: message, ...(err instanceof ApiError && { status: err.status, code: err.code }) })}\n`);
    process.stderr.write(`error: ${message}\n`);
    return EXIT.failed;
  }
}

void main(process.argv).then((code) => process.exit(code));
