/**
 * The live stream: `GET /api/events`, Server-Sent Events of every committed batch change,
 * whichever process committed it. The actor store NOTIFYs inside each transaction, so
 * PostgreSQL delivers a change only once it is committed; this process LISTENs and fans out.
 *
 * Each event's id is the change's commit time in ms. A client that reconnects with
 * `Last-Event-ID` first gets the current state of every batch changed since then — within
 * bounds: an id older than `REPLAY_WINDOW_MS`, or more than `MAX_REPLAYED` changed batches,
 * gets one `event: resync` instead (reload what you show), and an id that is no commit time
 * is a 400.
 *
 * A client sees only the changes of its own tenant's batches (an admin sees all): each
 * announcement names the batch's tenant.
 *
 * When this process loses its LISTEN connection (PostgreSQL restarted), it listens again and
 * sends its clients the current state of every batch changed meanwhile, so open streams miss nothing.
 */
import { Router, type Response } from "express";
import { Client } from "pg";
import { principalOf } from "../auth/guard";
import { tenantScope } from "../auth/roles";
import type { PrismaClient } from "../db";
import { UnauthorizedError, ValidationError } from "../errors";
import type { Logger } from "../logger";
import { BATCH_CHANNEL, type BatchChange } from "../vocabulary";

export type { BatchChange };

/** How far back a reconnecting client is sent what it missed. */
export const REPLAY_WINDOW_MS = 60 * 60 * 1000;
/** Most batches replayed to one reconnecting client. */
export const MAX_REPLAYED = 1000;
/** Commit times of other processes may run a little ahead of this one's clock. */
const CLOCK_SKEW_MS = 60_000;

/** The commit time a client last saw, or undefined for none; a 400 for anything else. */
export function parseLastEventId(header: string | undefined, now = Date.now()): number | undefined {
  if (header === undefined || header.trim() === "") return undefined;
  const value = /^\d{1,15}$/.test(header.trim()) ? Number(header.trim()) : NaN;
  if (!Number.isSafeInteger(value) || value > now + CLOCK_SKEW_MS) {
    throw new ValidationError(`Last-Event-ID: expected the id of an event this stream sent (a commit time in ms), got "${header.slice(0, 40)}"`);
  }
  return value;
}

export interface LiveStreamDeps {
  databaseUrl: string;
  prisma: PrismaClient;
  logger: Logger;
  /** Comment lines sent this often keep proxies from closing idle streams. */
  heartbeatMs?: number;
  /** Wait between attempts to listen again after the connection was lost. */
  reconnectMs?: number;
}

export async function createLiveStream({ databaseUrl, prisma, logger, heartbeatMs = 15_000, reconnectMs = 500 }: LiveStreamDeps) {
  /** Each open stream and the tenant it is confined to (undefined: every tenant). */
  const clients = new Map<Response, string | undefined>();
  let listener: Client | null = null;
  let closed = false;
  /** Commit time of the newest change delivered; a reconnect catches up from there. */
  let lastAt = Date.now();

  const send = (res: Response, change: BatchChange) => {
    const { tenant: _tenant, ...shown } = change;
    res.write(`id: ${change.at}\nevent: batch\ndata: ${JSON.stringify(shown)}\n\n`);
  };
  const broadcast = (change: BatchChange) => {
    lastAt = Math.max(lastAt, change.at);
    // An announcement without a tenant goes only to streams that see every tenant.
    for (const [res, scope] of clients) if (scope === undefined || scope === change.tenant) send(res, change);
  };

  /** The current state of every batch (of `tenant`, when given) changed after `since` (ms), oldest first. */
  async function changedSince(since: number, tenant?: string): Promise<BatchChange[]> {
    const rows = await prisma.batch.findMany({
      where: { updatedAt: { gt: new Date(since) }, ...(tenant !== undefined ? { tenant } : {}) },
      orderBy: { updatedAt: "asc" },
      // One more than is ever replayed, so a caller can tell "too many" from "all of them".
      take: MAX_REPLAYED + 1,
      select: { id: true, version: true, status: true, substate: true, updatedAt: true, tenant: true },
    });
    return rows.map((b) => ({
      batch_id: b.id,
      version: b.version,
      status: b.status as BatchChange["status"],
      substate: b.substate as BatchChange["substate"],
      deleted: false,
      at: b.updatedAt.getTime(),
      tenant: b.tenant,
    }));
  }

  async function listen() {
    const client = new Client({ connectionString: databaseUrl });
    // A lost connection (PostgreSQL restarted) is replaced; LISTEN does not survive it.
    client.on("error", (err) => {
      if (!closed) logger.warn({ err }, "live stream lost its PostgreSQL connection; listening again");
      lost(client);
    });
    client.on("end", () => lost(client));
    client.on("notification", (msg) => {
      if (msg.channel !== BATCH_CHANNEL || !msg.payload) return;
      broadcast(JSON.parse(msg.payload) as BatchChange);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${BATCH_CHANNEL}`);
    } catch (err) {
      client.removeAllListeners("end");
      await client.end().catch(() => undefined);
      throw err;
    }
    listener = client;
  }

  let relistening = false;
  function lost(client: Client) {
    if (closed || listener !== client || relistening) return;
    listener = null;
    relistening = true;
    void client.end().catch(() => undefined);
    const since = lastAt;
    const retry = async () => {
      if (closed) return;
      try {
        await listen();
        // Changes committed while nobody listened were never delivered: send their current state.
        for (const change of await changedSince(since - 1)) broadcast(change);
        relistening = false;
        logger.info("live stream listening again");
      } catch {
        setTimeout(() => void retry(), reconnectMs);
      }
    };
    setTimeout(() => void retry(), reconnectMs);
  }
  await listen();

  const heartbeat = setInterval(() => {
    for (const res of clients.keys()) res.write(": keep-alive\n\n");
  }, heartbeatMs);

  const router = Router();
  router.get("/events", async (req, res) => {
    const principal = principalOf(res);
    if (!principal) throw new UnauthorizedError();
    const scope = tenantScope(principal);
    const lastId = parseLastEventId(req.get("last-event-id"));
    res.set({ "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" });
    res.flushHeaders();
    res.write("retry: 2000\n\n");
    if (lastId !== undefined) {
      const missed = lastId < Date.now() - REPLAY_WINDOW_MS ? undefined : await changedSince(lastId, scope);
      if (missed === undefined || missed.length > MAX_REPLAYED) {
        res.write(`event: resync\ndata: ${JSON.stringify({ reason: missed ? "too many changes to replay" : "Last-Event-ID is older than the replay window" })}\n\n`);
      } else {
        for (const change of missed) send(res, change);
      }
    }
    clients.set(res, scope);
    req.on("close", () => clients.delete(res));
  });

  return {
    router,
    async close() {
      closed = true;
      clearInterval(heartbeat);
      for (const res of clients.keys()) res.end();
      clients.clear();
      await listener?.end();
    },
  };
}
