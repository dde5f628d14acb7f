/**
 * One queue prefix, one database. Two installations on different databases that shared a
 * prefix would take each other's jobs (each reconciler re-enqueueing what the other finished).
 * The first process to use a prefix records its database in `<prefix>:owner`; a process of
 * another database refuses to start on that prefix.
 */
import type { Redis } from "ioredis";
import type { PrismaClient } from "../db";

export class QueuePrefixTakenError extends Error {
  constructor(prefix: string, owner: string, ours: string) {
    super(
      `QUEUE_PREFIX "${prefix}" belongs to database ${owner}, not to this one (${ours}): set another QUEUE_PREFIX ` +
        `(or, if that database is gone for good, delete the Redis key ${prefix}:owner)`,
    );
    this.name = "QueuePrefixTakenError";
  }
}

/** Names this database across clusters: the cluster's system identifier and the database's name. */
export async function databaseIdentity(prisma: PrismaClient): Promise<string> {
  const [row] = await prisma.$queryRaw<{ db: string; cluster: string | null }[]>`
    SELECT current_database() AS db,
           (SELECT system_identifier::text FROM pg_control_system()) AS cluster`;
  return `${row?.cluster ?? "?"}/${row?.db ?? "?"}`;
}

/** Records `identity` as the prefix's owner, or throws `QueuePrefixTakenError` if another database owns it. */
export async function claimQueuePrefix(redis: Redis, prefix: string, identity: string): Promise<void> {
  const key = `${prefix}:owner`;
  for (;;) {
    if ((await redis.set(key, identity, "NX")) === "OK") return;
    const owner = await redis.get(key);
    if (owner === identity) return;
    // Deleted between our two calls: try to claim it again.
    if (owner !== null) throw new QueuePrefixTakenError(prefix, owner, identity);
  }
}
