/**
 * Walks a batch into any state through the batch service, playing the workers' part with
 * reports for the units the store actually dispatched.
 */
import type { BatchService } from "../../src/batch-service";
import type { PrismaClient } from "../../src/db";

export type Target =
  | "SAVED"
  | "STAGING"
  | "STAGED"
  | "ANALYZING.queued"
  | "ANALYZING.running"
  | "PAUSED"
  | "COMPLETED"
  | "COMPLETED_WITH_FAILURES"
  | "FAILED"
  | "FAILED_STAGING"
  | "CANCELLED";

export interface Driver {
  service: BatchService;
  prisma: PrismaClient;
}

export async function createBatch(d: Driver, opts: { documents?: number; failureTolerance?: number; window?: number; name?: string } = {}) {
  const n = opts.documents ?? 2;
  return d.service.createBatch({
    name: opts.name ?? "test batch",
    analysis: { instructions: "Summarise." },
    priority: 0,
    window: opts.window ?? 4,
    stagingTolerance: 0,
    failureTolerance: opts.failureTolerance ?? 0,
    documents: Array.from({ length: n }, (_, i) => ({ name: `doc-${i}.txt`, mimeType: "text/plain", content: Buffer.from(`Document number ${i}.`) })),
  });
}

export async function runningDocuments(prisma: PrismaClient, batchId: string) {
  return prisma.document.findMany({ where: { batchId, stageStatus: "running" }, orderBy: { position: "asc" } });
}

export async function runningTasks(prisma: PrismaClient, batchId: string) {
  return prisma.task.findMany({ where: { batchId, status: "running" }, orderBy: { id: "asc" } });
}

export async function stageAll(d: Driver, batchId: string, fail = false) {
  const batch = await d.prisma.batch.findUniqueOrThrow({ where: { id: batchId } });
  for (;;) {
    const docs = await runningDocuments(d.prisma, batchId);
    if (!docs.length) return;
    for (const doc of docs) {
      if (fail) {
        await d.service.report({ type: "DOCUMENT_STAGE_FAILED", batchId, runId: batch.runId, documentId: doc.id, error: "corrupt file" });
      } else {
        await d.service.report({
          type: "DOCUMENT_STAGED", batchId, runId: batch.runId, documentId: doc.id,
          text: "text", chunks: [{ index: 0, text: "text", tokens: 1, start: 0, end: 4 }], tokenCount: 1, textSha256: "0".repeat(64),
        });
      }
    }
  }
}

/** Reports every running task; `fail` decides per task whether it fails. */
export async function finishTasks(d: Driver, batchId: string, fail: (i: number) => boolean = () => false) {
  let i = 0;
  for (;;) {
    const batch = await d.prisma.batch.findUniqueOrThrow({ where: { id: batchId } });
    const tasks = await runningTasks(d.prisma, batchId);
    if (!tasks.length) return;
    for (const t of tasks) {
      if (fail(i++)) await d.service.report({ type: "TASK_FAILED", batchId, runId: batch.runId, taskId: t.id, error: "model error" });
      else await d.service.report({ type: "TASK_COMPLETED", batchId, runId: batch.runId, taskId: t.id, output: { ok: true }, inputTokens: 10, outputTokens: 5 });
    }
  }
}

/** A new batch in the target state. */
export async function batchIn(d: Driver, target: Target): Promise<string> {
  const id = await createBatch(d, { failureTolerance: target === "COMPLETED_WITH_FAILURES" ? 0.5 : 0 });
  if (target === "SAVED") return id;
  await d.service.requestStateChange(id, "stage");
  if (target === "STAGING") return id;
  if (target === "CANCELLED") {
    await d.service.requestStateChange(id, "cancel");
    return id;
  }
  if (target === "FAILED_STAGING") {
    await stageAll(d, id, true);
    return id;
  }
  await stageAll(d, id);
  if (target === "STAGED") return id;
  // Whether `run` leaves the batch queued or running depends on the free slots of the driver's engine.
  await d.service.requestStateChange(id, "run");
  if (target === "ANALYZING.queued" || target === "ANALYZING.running") return id;
  if (target === "PAUSED") {
    await d.service.requestStateChange(id, "pause");
    return id;
  }
  if (target === "FAILED") await finishTasks(d, id, () => true);
  else if (target === "COMPLETED_WITH_FAILURES") await finishTasks(d, id, (i) => i === 0);
  else await finishTasks(d, id);
  return id;
}
