/**
 * The live stream: `GET /api/events`, Server-Sent Events of every committed batch change,
 * whichever process committed it. The actor store NOTIFYs inside each transaction, so
 * PostgreSQL delivers a change only once it is committed; this process LISTENs and fans out.
 *
 * Each event's id is the change's commit time in ms. A client that reconnects with
 * `Last-Event-ID` first gets the current state of every batch changed since then.
 */
import { Router, type Response } from "express";
import { Client } from "pg";
import { BATCH_CHANNEL, type BatchChange } from "../vocabulary";
import type { PrismaClient } from "../db";
import type { Logger } from "../logger";

export type { BatchChange };

export interface LiveStreamDeps {
  databaseUrl: string;
  prisma: PrismaClient;
  logger: Logger;
  /** Comment lines sent this often keep proxies from closing idle streams. */
  heartbeatMs?: number;
}

export async function createLiveStream({ databaseUrl, prisma, logger, heartbeatMs = 15_000 }: LiveStreamDeps) {
  const clients = new Set<Response>();
  const listener = new Client({ connectionString: databaseUrl });
  let closed = false;

  const send = (res: Response, change: BatchChange) => {
    res.write(`id: ${change.at}\nevent: batch\ndata: ${JSON.stringify(change)}\n\n`);
  };

  async function listen() {
    await listener.connect();
    listener.on("notification", (msg) => {
      if (msg.channel !== BATCH_CHANNEL || !msg.payload) return;
      const change = JSON.parse(msg.payload) as BatchChange;
      for (const res of clients) send(res, change);
    });
    listener.on("error", (err) => {
      if (!closed) logger.error({ err }, "live stream lost its PostgreSQL connection");
    });
    await listener.query(`LISTEN ${BATCH_CHANNEL}`);
  }
  await listen();

  const heartbeat = setInterval(() => {
    for (const res of clients) res.write(": keep-alive\n\n");
  }, heartbeatMs);

  const router = Router();
  router.get("/events", async (req, res) => {
    res.set({ "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" });
    res.flushHeaders();
    res.write("retry: 2000\n\n");
    const lastId = Number(req.get("last-event-id"));
    if (Number.isFinite(lastId) && lastId > 0) {
      const missed = await prisma.batch.findMany({
        where: { updatedAt: { gt: new Date(lastId) } },
        orderBy: { updatedAt: "asc" },
        select: { id: true, version: true, status: true, substate: true, updatedAt: true },
      });
      for (const b of missed) {
        send(res, { batch_id: b.id, version: b.version, status: b.status as BatchChange["status"], substate: b.substate as BatchChange["substate"], deleted: false, at: b.updatedAt.getTime() });
      }
    }
    clients.add(res);
    req.on("close", () => clients.delete(res));
  });

  return {
    router,
    async close() {
      closed = true;
      clearInterval(heartbeat);
      for (const res of clients) res.end();
      clients.clear();
      await listener.end();
    },
  };
}
