/**
 * A separate process on a test's database, for the inbox tests:
 * - `deliver <url> <batchId>`: delivers a TASK_COMPLETED for every running task of the batch
 *   (as a worker process would), then exits once its inbox flushed and its drains ended;
 * - `hang <url>`: drains every batch's inbox but stops inside the commit of its first group,
 *   printing `in-commit`, so that the test can SIGKILL it there.
 */
import { createPrisma } from "../../src/db";
import { createEngine } from "../../src/engine";
import { createLogger } from "../../src/logger";

async function main() {
  const [mode, url, batchId] = process.argv.slice(2) as [string, string, string | undefined];
  const hang = mode === "hang";
  const prisma = createPrisma(url, 2);
  const engine = createEngine({
    prisma,
    databaseUrl: url,
    logger: createLogger("silent"),
    maxRunningBatches: 100,
    beforeCommit: hang
      ? async () => {
          process.stdout.write("in-commit\n");
          await new Promise(() => undefined);
        }
      : undefined,
  });
  if (hang) {
    await engine.service.sweepInbox();
    return;
  }
  const tasks = await prisma.task.findMany({ where: { batchId, status: "running" }, orderBy: { position: "asc" } });
  process.stdout.write("ready\n");
  await Promise.all(tasks.map((t) => engine.service.deliver({ type: "TASK_COMPLETED", batchId: batchId!, runId: t.runId, taskId: t.id, output: { by: process.pid } })));
  await engine.close();
  await prisma.$disconnect();
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
