/**
 * What the reconciler keeps alive for the batch lane: a poller for every open provider batch and a
 * submitter while tasks wait for one. Apart from the lane's processors so that every process (an API
 * process too) can reconcile without loading the providers' SDKs.
 */
import type { PrismaClient } from "../../db";
import { jobIds, LANE_SUBMIT_OPTIONS, type Queues } from "../queues";

interface ReconcileDeps {
  prisma: PrismaClient;
  queues: Queues;
}

/** Job states that mean the job will still run (or is running). */
const ALIVE = new Set(["active", "waiting", "delayed", "prioritized", "waiting-children", "wait"]);

/**
 * A poller for every provider batch the provider knows and that has not ended, whatever its
 * batch's state (a paused batch's provider batches are cancelled and harvested by theirs).
 */
export async function ensurePollers(deps: ReconcileDeps): Promise<number> {
  const { prisma, queues } = deps;
  let added = 0;
  const parts = await prisma.providerBatch.findMany({
    where: { status: { notIn: ["ended", "failed", "submitting"] }, providerId: { not: null } },
    select: { id: true, batchId: true, runId: true },
  });
  for (const p of parts) {
    const jobId = jobIds.lanePoll(p.id);
    if (ALIVE.has(await queues.lane.getJobState(jobId))) continue;
    // A finished poller's job is kept a while; it must make room for the new one.
    await queues.lane.remove(jobId);
    await queues.lane.add("poll", { kind: "poll", batchId: p.batchId, runId: p.runId, providerBatchId: p.id }, { jobId });
    added++;
  }
  return added;
}

/**
 * What a running lane batch needs besides its pollers: a submitter while tasks wait for a provider
 * batch (or one was recorded but not submitted). Returns whether it added one, and the tasks whose
 * provider batch ended and handed them to the live lane, which need a live job like any other.
 */
export async function reconcileLane(
  deps: ReconcileDeps,
  batchId: string,
  runId: number,
): Promise<{ added: number; live: { id: string; dispatches: number }[] }> {
  const { prisma, queues } = deps;
  let added = 0;
  const open = await prisma.providerBatch.findMany({ where: { batchId, runId, status: { notIn: ["ended", "failed"] } }, select: { id: true, providerId: true } });
  const waiting = await prisma.task.count({ where: { batchId, runId, status: "running", providerBatchId: null } });
  if (waiting > 0 || open.some((p) => !p.providerId)) {
    const data = { kind: "submit" as const, batchId, runId };
    const jobId = jobIds.laneSubmit({ ...data, key: "reconcile" });
    if (!ALIVE.has(await queues.lane.getJobState(jobId))) {
      await queues.lane.add("submit", data, { jobId, ...LANE_SUBMIT_OPTIONS });
      added++;
    }
  }
  return {
    added,
    live: await prisma.task.findMany({
      where: { batchId, runId, status: "running", providerBatchId: { not: null }, NOT: { providerBatchId: { in: open.map((p) => p.id) } } },
      select: { id: true, dispatches: true },
    }),
  };
}
