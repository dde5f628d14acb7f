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
import type { Availability } from "./availability";
import { isLastAttempt } from "./jobs";
import type { StagingJob } from "./queues";
import type { PricingResolver } from "../pricing";
import type { AnalysisInput } from "../server/http-schemas";
import { analysisRequest } from "./analysis-request";
import { planCost } from "./providers/conversation";

export interface StagingDeps {
  prisma: PrismaClient;
  service: BatchService;
  logger: Logger;
  /** Database steps wait out an outage through it instead of failing the job. */
  availability: Availability;
  extractors: ExtractorPool;
  /** What the batch's model costs and allows, to count the document's analysis plan. */
  pricing: PricingResolver;
}

/** Batches whose analysis definition this process holds (it never changes after creation). */
const MAX_CACHED_ANALYSES = 100;

export function createStagingProcessor({ prisma, service, logger, availability, extractors, pricing }: StagingDeps) {
  const analyses = new Map<string, AnalysisInput>();
  async function analysisOf(batchId: string): Promise<AnalysisInput | null> {
    const known = analyses.get(batchId);
    if (known) return known;
    const batch = await untilSaved(() => prisma.batch.findUnique({ where: { id: batchId }, select: { analysis: true } }));
    if (!batch) return null;
    const analysis = batch.analysis as unknown as AnalysisInput;
    const oldest = analyses.keys().next();
    if (analyses.size >= MAX_CACHED_ANALYSES && !oldest.done) analyses.delete(oldest.value);
    analyses.set(batchId, analysis);
    return analysis;
  }

  // Every step that reads or reports waits out a database outage (a report is safe to repeat),
  // so an outage neither burns the job's attempts nor repeats work already reported.
  const { untilSaved } = availability;
  const deliver = (r: Parameters<BatchService["deliver"]>[0]) => untilSaved(() => service.deliver(r));
  return async (job: Job<StagingJob>, _token?: string, signal?: AbortSignal): Promise<string> => {
    const { batchId, runId, documentId } = job.data;
    const log = logger.child({ batchId, documentId, jobId: job.id });
    const doc = await untilSaved(() =>
      prisma.document.findUnique({
        where: { id: documentId },
        select: { name: true, stageRunId: true, stageStatus: true },
      }),
    );
    // A job of an older run, of a deleted batch, or already reported: nothing to do.
    if (!doc || doc.stageRunId !== runId || doc.stageStatus !== "running") return "skipped";
    try {
      const staged = await extractors.stage({ documentId, name: doc.name }, signal);
      if (!staged) return "skipped";
      const analysis = await analysisOf(batchId);
      if (!analysis) return "skipped";
      // Counted here, from the text just chunked, so the estimate is a sum when staging finishes.
      const priced = pricing(analysis);
      const plan = planCost(analysisRequest(analysis, priced, doc.name, staged.chunks), { reasks: priced.reasks, answerCeiling: priced.answerCeiling });
      await deliver({ type: "DOCUMENT_STAGED", batchId, runId, documentId, ...staged, plan });
      return "reported";
    } catch (err) {
      // A document that cannot be read will not be readable on the next attempt either.
      if (!(err instanceof ExtractionError) && !isLastAttempt(job)) throw err;
      const error = err instanceof ExtractionError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
      log.warn({ err }, "staging failed");
      await deliver({ type: "DOCUMENT_STAGE_FAILED", batchId, runId, documentId, error });
      return "reported";
    }
  };
}
