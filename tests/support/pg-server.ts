/**
 * A private PostgreSQL cluster for tests that crash and restart the database, so nobody
 * else's connections die with it. Root cannot run initdb/pg_ctl, so they run as `postgres`
 * in a temporary directory it owns; the port is taken from PRIVATE_PG_PORTS.
 */
import { execFile } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createPrisma, ensureDatabase, migrate, type PrismaClient } from "../../src/db";
import type { TestDatabase } from "./db";

const run = promisify(execFile);

/** The ports this repository's fault tests may use for private clusters. */
const PRIVATE_PG_PORTS = [5450, 5451, 5452, 5453, 5454, 5455, 5456, 5457, 5458, 5459];

function binDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(path.join(root, v, "bin", "pg_ctl"))) return path.join(root, v, "bin");
  throw new Error("no PostgreSQL server binaries under /usr/lib/postgresql");
}

export interface PrivatePostgres {
  port: number;
  /** A connection URL for `database` on this cluster. */
  url(database: string): string;
  /** `pg_ctl -m immediate stop`: a crash, as far as clients can tell. */
  crash(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

async function portFree(port: number): Promise<boolean> {
  const { createServer } = await import("node:net");
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = binDir();
  const dir = mkdtempSync(path.join(tmpdir(), "tranche-pg-"));
  chownSync(dir, Number((await run("id", ["-u", "postgres"])).stdout.trim()), Number((await run("id", ["-g", "postgres"])).stdout.trim()));
  const asPostgres = (cmd: string, args: string[]) => run("runuser", ["-u", "postgres", "--", path.join(bin, cmd), ...args]);
  await asPostgres("initdb", ["-D", dir, "-U", "postgres", "--auth=trust", "--no-sync"]);
  let port = 0;
  for (const candidate of PRIVATE_PG_PORTS) {
    if (await portFree(candidate)) {
      port = candidate;
      break;
    }
  }
  if (!port) throw new Error(`no free port for a private PostgreSQL among ${PRIVATE_PG_PORTS.join(", ")}`);
  const options = `-p ${port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  const start = async () => {
    await asPostgres("pg_ctl", ["-D", dir, "-o", options, "-l", path.join(dir, "server.log"), "-w", "start"]);
  };
  await start();
  return {
    port,
    url: (database) => `postgresql://postgres@127.0.0.1:${port}/${database}`,
    crash: async () => {
      await asPostgres("pg_ctl", ["-D", dir, "-m", "immediate", "-w", "stop"]);
    },
    start,
    close: async () => {
      await asPostgres("pg_ctl", ["-D", dir, "-m", "immediate", "-w", "stop"]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A migrated database on a private cluster, shaped like the clones `createTestDatabase` makes. */
export async function createDatabaseOn(pg: PrivatePostgres, name = "tranche_faults"): Promise<TestDatabase> {
  const url = pg.url(name);
  await ensureDatabase(url);
  await migrate(url);
  const clients: PrismaClient[] = [];
  const newClient = (max = 10) => {
    const client = createPrisma(url, max);
    clients.push(client);
    return client;
  };
  return {
    name,
    url,
    prisma: newClient(),
    newClient,
    // The cluster goes with the test; only the connections need closing.
    drop: async () => {
      await Promise.all(clients.map((c) => c.$disconnect()));
    },
  };
}
