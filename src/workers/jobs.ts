/** Small facts about BullMQ jobs that both processors need. */
import type { Job } from "bullmq";

/** Whether a throw now would fail the job for good instead of retrying it. */
export function isLastAttempt(job: Job): boolean {
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}
