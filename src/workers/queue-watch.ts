/**
 * Notices a queue paused in Redis — from the BullMQ dashboard, say — which would otherwise
 * stall every batch without a word: no worker takes its jobs until it is resumed. A change
 * is logged once (warn when paused, info when resumed); `paused()` tells the health answer.
 */
import type { Queue } from "bullmq";
import type { Logger } from "../logger";

export function createQueueWatch({ queues, logger }: { queues: Queue[]; logger: Logger }) {
  let known = new Set<string>();
  return {
    /** The names of the queues paused now (asked of Redis), logging any change since the last look. */
    async paused(): Promise<string[]> {
      const flags = await Promise.all(queues.map(async (q) => ((await q.isPaused()) ? q.name : undefined)));
      const now = new Set(flags.filter((n): n is string => n !== undefined));
      for (const name of now) {
        if (!known.has(name)) logger.warn({ queue: name }, `queue ${name} is paused in Redis: none of its jobs runs until it is resumed (e.g. from /admin/queues)`);
      }
      for (const name of known) if (!now.has(name)) logger.info({ queue: name }, `queue ${name} was resumed`);
      known = now;
      return [...now].sort();
    },
  };
}

export type QueueWatch = ReturnType<typeof createQueueWatch>;
