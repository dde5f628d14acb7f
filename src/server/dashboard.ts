/** The operators' view: bull-board over every queue Tranche uses, at /admin/queues. */
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import type { Queue } from "bullmq";

export function createDashboardRouter(queues: Queue[], basePath = "/admin/queues") {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(basePath);
  createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q)), serverAdapter, options: { uiConfig: { boardTitle: "Tranche queues" } } });
  return serverAdapter.getRouter();
}
