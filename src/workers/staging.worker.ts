/**
 * The staging processor: has an extractor process extract, normalize and chunk a document's
 * text, and reports the outcome to its batch. It reads what it needs and writes nothing: the
 * report goes to the inbox (the job is acknowledged only once it is durable), and the store
 * records the text and chunks when it applies it.
 */
import type { Job } from "bullmq";
import type { BatchService } from "../batch-service";
import type { PrismaClient } from "../db";
import type { Logger } from "../logger";
import { ExtractionError } from "./extract";
import type { ExtractorPool } from "./extractor-pool";
import { isLastAttempt } from "./jobs";
import type { StagingJob } from "./queues";

export interface StagingDeps {
  prisma: PrismaClient;
  service: BatchService;
  logger: Logger;
  extractors: ExtractorPool;
}

export function createStagingProcessor({ prisma, service, logger, extractors }: StagingDeps) {
  return async (job: Job<StagingJob>, _token?: string, signal?: AbortSignal): Promise<string> => {
    const { batchId, runId, documentId } = job.data;
    const log = logger.child({ batchId, documentId, jobId: job.id });
    const doc = await prisma.document.findUnique({
      where: { id: documentId },
      select: { name: true, stageRunId: true, stageStatus: true },
    });
    // A job of an older run, of a deleted batch, or already reported: nothing to do.
    if (!doc || doc.stageRunId !== runId || doc.stageStatus !== "running") return "skipped";
    try {
      const staged = await extractors.stage({ documentId, name: doc.name }, signal);
      if (!staged) return "skipped";
      await service.deliver({ type: "DOCUMENT_STAGED", batchId, runId, documentId, ...staged });
      return "reported";
    } catch (err) {
      // A document that cannot be read will not be readable on the next attempt either.
      if (!(err instanceof ExtractionError) && !isLastAttempt(job)) throw err;
      const error = err instanceof ExtractionError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
      log.warn({ err }, "staging failed");
      await service.deliver({ type: "DOCUMENT_STAGE_FAILED", batchId, runId, documentId, error });
      return "reported";
    }
  };
}
