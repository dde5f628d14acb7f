// The `tranche` CLI as a child process against a real server: submit --watch on the fixture folder reaches COMPLETED and exits 0, results --format csv -o writes the file, an unreadable file is skipped with a message, and refusals print the server's message with a non-zero exit.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, symlinkSync, copyFileSync, existsSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { createOpsSystem, type OpsSystem } from "./support/ops-app";

const root = path.join(__dirname, "..");
const fixtures = path.join(__dirname, "fixtures", "documents");
let s: OpsSystem;
let server: Server;
let url: string;
beforeAll(async () => {
  s = await createOpsSystem({ maxRunningBatches: 2 });
  server = await new Promise<Server>((resolve) => {
    const listening = s.opsApp.listen(0, "127.0.0.1", () => resolve(listening));
  });
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await s.close();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function tranche(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(root, "bin", "tranche.js"), ...args], { cwd: root, env: { ...process.env, TRANCHE_URL: url }, timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let completedId: string;

test("submit --watch on the fixture folder stages, runs, reaches COMPLETED and exits 0", async () => {
  const run = await tranche("submit", fixtures, "--name", "fixtures", "--instructions", "Summarise the document.", "--staging-tolerance", "0.5", "--page-files", "2", "--watch");
  expect(run.stderr).toContain("uploaded 6 of 6 documents");
  expect(run.stderr).toMatch(/uploaded 2 of 6 documents[\s\S]*uploaded 4 of 6 documents/);
  expect(run.stdout).toMatch(/^COMPLETED: fixtures \(/);
  expect(run.stdout).toContain("6 uploaded, 0 skipped; 5 staged, 1 failed staging");
  expect(run.stdout).toContain("5 succeeded, 0 failed, 0 cancelled, 0 to go of 5");
  expect(run.code).toBe(0);
  completedId = /\(([0-9a-f-]{36})\)/.exec(run.stdout)?.[1] as string;
  const batch = await s.db.prisma.batch.findUniqueOrThrow({ where: { id: completedId } });
  expect(batch).toMatchObject({ status: "COMPLETED", succeeded: 5, total: 5 });
}, 180_000);

test("results --format csv -o writes the file", async () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), "tranche-cli-")), "results.csv");
  const run = await tranche("results", completedId, "--format", "csv", "-o", file);
  expect(run.code).toBe(0);
  expect(existsSync(file)).toBe(true);
  const lines = readFileSync(file, "utf8").trim().split("\n");
  expect(lines[0]).toMatch(/^document_id,name,mime_type,status,output,error/);
  expect(lines).toHaveLength(7);
  expect(lines.filter((l) => l.includes(",succeeded,"))).toHaveLength(5);
});

test("--json on show, ls and history prints JSON for scripts", async () => {
  const show = await tranche("--json", "show", completedId);
  expect(show.code).toBe(0);
  expect(JSON.parse(show.stdout)).toMatchObject({ id: completedId, status: "COMPLETED" });
  const ls = await tranche("--json", "ls", "--status", "COMPLETED");
  expect(JSON.parse(ls.stdout).batches.map((b: { id: string }) => b.id)).toContain(completedId);
  const history = await tranche("--json", "history", completedId);
  expect(JSON.parse(history.stdout).map((h: { event_type: string }) => h.event_type)).toEqual(expect.arrayContaining(["created", "stage", "run", "TASK_COMPLETED"]));
});

test("an unknown batch id exits non-zero with the server's message, and no stack trace", async () => {
  const id = "00000000-0000-4000-8000-000000000000";
  const run = await tranche("show", id);
  expect(run.code).toBe(1);
  expect(run.stderr).toBe(`error: Batch ${id} not found (404 not_found)\n`);
  const refused = await tranche("pause", completedId);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/^error: .*COMPLETED.* \(409 transition_refused\)\n$/);
});

test("an unreadable file is skipped with a message; usage errors exit 2", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "tranche-cli-docs-"));
  copyFileSync(path.join(fixtures, "notes.txt"), path.join(dir, "notes.txt"));
  symlinkSync(path.join(dir, "gone.txt"), path.join(dir, "dangling.txt"));
  const run = await tranche("submit", dir, "--name", "skips", "--instructions", "x");
  expect(run.stderr).toContain(`skipping ${path.join(dir, "dangling.txt")}: ENOENT`);
  expect(run.stdout).toMatch(/^ANALYZING: skips/);
  expect(run.stdout).toContain("1 uploaded, 1 skipped");
  expect(run.code).toBe(0);

  expect((await tranche("submit", dir, "--name", "x")).code).toBe(2);
  expect((await tranche("results", completedId, "--format", "xml")).code).toBe(2);
  expect((await tranche("frobnicate")).code).toBe(2);
}, 120_000);

test("submit --budget sets the batch's budget, budget <id> <usd> changes it, show prints what it spent of it", async () => {
  const run = await tranche("--json", "submit", path.join(fixtures, "notes.txt"), "--name", "budgeted", "--instructions", "Summarise.", "--budget", "2.5");
  expect(run.code).toBe(0);
  const id = (JSON.parse(run.stdout) as { batch: { id: string; budget_usd: number } }).batch.id;
  expect(await s.db.prisma.batch.findUniqueOrThrow({ where: { id } })).toMatchObject({ budgetUsd: 2.5 });
  const raised = await tranche("budget", id, "7");
  expect(raised.code).toBe(0);
  expect(raised.stdout).toMatch(/^budget: \$7\.00/);
  expect(raised.stdout).toMatch(/spent {6}\$\d+\.\d+ of a \$7\.00 budget/);
  expect((await tranche("budget", id, "-3")).code).toBe(2);
  expect((await tranche("submit", path.join(fixtures, "notes.txt"), "--name", "x", "--instructions", "y", "--budget", "lots")).code).toBe(2);
  expect((await tranche("budget", id, "none")).code).toBe(0);
  expect(await s.db.prisma.batch.findUniqueOrThrow({ where: { id } })).toMatchObject({ budgetUsd: null });
}, 120_000);
