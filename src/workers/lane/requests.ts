/**
 * What the batch lane sends for a batch's tasks: the same prompts the live lane would send (the
 * instructions first and identical for every task, so provider-side prompt caching applies), one
 * request line per task. A document too long for one request is analysed map-reduce, which needs
 * answers before it can ask again, so it goes to the live lane instead.
 */
import type { PrismaClient } from "../../db";
import type { Chunk } from "../../machines/batch.events";
import type { ModelInfo } from "../../pricing";
import type { BatchAnalysis } from "../analysis.worker";
import { planAnalysis, systemPrompt, userPrompt } from "../providers/conversation";
import { PermanentProviderError, type AnalysisRequest } from "../providers/provider";
import type { BatchRequestLine } from "../providers/batch/lane";

export interface LaneTask {
  id: string;
  dispatches: number;
}

export interface LaneRequests {
  lines: BatchRequestLine[];
  /** Tasks whose documents need map-reduce: for the live lane. */
  live: LaneTask[];
  /** Tasks that cannot be analysed at all (a chunk larger than the context window), with the reason. */
  impossible: { task: LaneTask; error: string }[];
}

export async function buildRequests(prisma: PrismaClient, analysis: BatchAnalysis, model: ModelInfo, taskIds: string[]): Promise<LaneRequests> {
  const rows = await prisma.task.findMany({
    where: { id: { in: taskIds } },
    select: { id: true, dispatches: true, position: true, document: { select: { name: true, chunks: true } } },
    orderBy: { position: "asc" },
  });
  const out: LaneRequests = { lines: [], live: [], impossible: [] };
  for (const row of rows) {
    const task = { id: row.id, dispatches: row.dispatches };
    const req: AnalysisRequest = {
      instructions: analysis.instructions,
      ...(analysis.output_schema && { outputSchema: analysis.output_schema }),
      model: model.model,
      ...(analysis.max_tokens !== undefined && { maxTokens: analysis.max_tokens }),
      ...(model.contextTokens !== null && { contextTokens: model.contextTokens }),
      ...(model.maxOutputTokens !== null && { maxOutputTokens: model.maxOutputTokens }),
      documentName: row.document.name,
      chunks: ((row.document.chunks ?? []) as unknown as Chunk[]).map((c) => ({ index: c.index, text: c.text })),
    };
    const system = systemPrompt(req);
    try {
      if (planAnalysis(req, system).strategy === "map_reduce") {
        out.live.push(task);
        continue;
      }
    } catch (err) {
      if (!(err instanceof PermanentProviderError)) throw err;
      out.impossible.push({ task, error: err.message });
      continue;
    }
    out.lines.push({
      customId: row.id,
      model: model.model,
      system,
      user: userPrompt(req),
      ...(analysis.output_schema && { schema: analysis.output_schema }),
      ...(analysis.temperature !== undefined && { temperature: analysis.temperature }),
      ...(analysis.max_tokens !== undefined && { maxTokens: analysis.max_tokens }),
    });
  }
  return out;
}
