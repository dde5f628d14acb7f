/**
 * API keys: `trk_<id>_<secret>`, the secret 32 random bytes (base64url). The `trk_` prefix
 * makes a leaked key easy to recognise (and to scan for); the id finds the row without
 * revealing anything. Only the sha256 of the whole key is stored, and a presented key is
 * compared with it in constant time. An unknown, malformed or revoked key all come back as
 * `null`, so the caller cannot tell them apart.
 *
 * Every process keeps looked-up keys for at most `cacheMs`, and drops one at once when any
 * process announces its revocation on the `tranche_keys` NOTIFY channel (`listen`).
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { Client } from "pg";
import type { PrismaClient } from "../db";
import type { Logger } from "../logger";
import type { Principal, Role } from "./roles";

export const KEY_PREFIX = "trk_";
export const KEYS_CHANNEL = "tranche_keys";
const KEY_SHAPE = /^trk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** A key as listed: never its secret. */
export interface KeyView {
  id: string;
  name: string;
  role: Role;
  tenant: string;
  created_at: string;
  revoked_at: string | null;
}

export const sha256 = (text: string): Buffer => createHash("sha256").update(text).digest();

/** Equal in constant time (both sides hashed first, so lengths always match). */
export function sameSecret(presented: string, expected: string): boolean {
  return timingSafeEqual(sha256(presented), sha256(expected));
}

export function newKey(): { id: string; key: string } {
  const id = randomBytes(8).toString("hex");
  return { id, key: `${KEY_PREFIX}${id}_${randomBytes(32).toString("base64url")}` };
}

interface CachedKey {
  row: { name: string; role: string; tenant: string; hash: string; revokedAt: Date | null };
  until: number;
}

/** Past this many cached keys the cache starts over, so made-up ids cannot grow it without end. */
const MAX_CACHED = 10_000;

export interface KeyStoreDeps {
  prisma: PrismaClient;
  /** How long a looked-up key is trusted without asking PostgreSQL again. */
  cacheMs?: number;
}

export function createKeyStore({ prisma, cacheMs = 1000 }: KeyStoreDeps) {
  const cache = new Map<string, CachedKey>();

  const view = (k: { id: string; name: string; role: string; tenant: string; createdAt: Date; revokedAt: Date | null }): KeyView => ({
    id: k.id,
    name: k.name,
    role: k.role as Role,
    tenant: k.tenant,
    created_at: k.createdAt.toISOString(),
    revoked_at: k.revokedAt?.toISOString() ?? null,
  });

  /** Makes a key; the answer is the only place its secret ever appears. */
  async function create(input: { name: string; role: Role; tenant: string }): Promise<KeyView & { key: string }> {
    const { id, key } = newKey();
    const row = await prisma.apiKey.create({ data: { id, ...input, hash: sha256(key).toString("hex") } });
    return { ...view(row), key };
  }

  async function list(): Promise<KeyView[]> {
    const rows = await prisma.apiKey.findMany({ orderBy: [{ createdAt: "asc" }, { id: "asc" }] });
    return rows.map(view);
  }

  /** Revokes a key and tells every process; null when there is no such key. Revoking twice is harmless. */
  async function revoke(id: string): Promise<KeyView | null> {
    const found = await prisma.apiKey.findUnique({ where: { id } });
    if (!found) return null;
    const row = found.revokedAt ? found : await prisma.apiKey.update({ where: { id }, data: { revokedAt: new Date() } });
    cache.delete(id);
    await prisma.$queryRaw`SELECT pg_notify(${KEYS_CHANNEL}, ${id})::text`;
    return view(row);
  }

  /** The key's principal, or null for anything that is not a live key. */
  async function verify(presented: string): Promise<Principal | null> {
    const m = KEY_SHAPE.exec(presented);
    if (!m) return null;
    const id = m[1] as string;
    let cached = cache.get(id);
    if (!cached || cached.until < Date.now()) {
      const row = await prisma.apiKey.findUnique({ where: { id }, select: { name: true, role: true, tenant: true, hash: true, revokedAt: true } });
      // Only real keys are cached: an unknown id is asked for again (the request limit bounds how often).
      cached = row ? { row, until: Date.now() + cacheMs } : undefined;
      if (cache.size >= MAX_CACHED) cache.clear();
      if (cached) cache.set(id, cached);
      else cache.delete(id);
    }
    const row = cached?.row;
    const stored = Buffer.from(row?.hash ?? "", "hex");
    const matches = stored.length === 32 && timingSafeEqual(sha256(presented), stored);
    if (!row || !matches || row.revokedAt) return null;
    return { keyId: id, name: row.name, role: row.role as Role, tenant: row.tenant };
  }

  /**
   * Listens for revocations announced by any process and forgets those keys at once.
   * Returns the function that stops listening.
   */
  async function listen(databaseUrl: string, logger: Logger): Promise<() => Promise<void>> {
    const client = new Client({ connectionString: databaseUrl });
    let closed = false;
    await client.connect();
    client.on("notification", (msg) => {
      if (msg.channel === KEYS_CHANNEL && msg.payload) cache.delete(msg.payload);
    });
    client.on("error", (err) => {
      // Without the channel a revocation still takes effect once the cache entry expires.
      if (!closed) logger.error({ err }, "API key revocations: lost the PostgreSQL connection");
    });
    await client.query(`LISTEN ${KEYS_CHANNEL}`);
    return async () => {
      closed = true;
      await client.end();
    };
  }

  return { create, list, revoke, verify, listen };
}

export type KeyStore = ReturnType<typeof createKeyStore>;
