/** A private redis-server for tests that must wipe Redis (FLUSHALL) without touching anyone else's data. */
import { spawn } from "node:child_process";
import { Redis } from "ioredis";

/** `port`: a fixed port (from the caller's range), e.g. to start it again where clients reconnect; default a random one. */
export async function startPrivateRedis(options: { port?: number } = {}): Promise<{ url: string; close(): Promise<void> }> {
  for (let attempt = 0; attempt < (options.port ? 1 : 10); attempt++) {
    const port = options.port ?? 20000 + Math.floor(Math.random() * 20000);
    const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
    const url = `redis://127.0.0.1:${port}`;
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    for (let i = 0; i < 50; i++) {
      if (child.exitCode !== null) break;
      try {
        await probe.connect();
        await probe.ping();
        await probe.quit();
        return {
          url,
          close: async () => {
            child.kill("SIGTERM");
            await new Promise((r) => child.once("exit", r));
          },
        };
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    probe.disconnect();
    child.kill("SIGKILL");
  }
  throw new Error("could not start a private redis-server");
}

/** The ports this repository's fault tests may use for a Redis that must come back on the same port. */
const RESTARTABLE_PORTS = [6400, 6401, 6402, 6403, 6404, 6405, 6406, 6407, 6408, 6409];

export interface RestartableRedis {
  url: string;
  /** SIGKILL: gone at once, with everything it held (it keeps nothing on disk). */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty (does nothing while it runs). */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A private redis-server that can be killed and started again, empty, on the same port. */
export async function startRestartableRedis(): Promise<RestartableRedis> {
  for (const port of RESTARTABLE_PORTS) {
    const url = `redis://127.0.0.1:${port}`;
    let child: ReturnType<typeof spawn> | null = null;
    const start = async () => {
      if (child && child.exitCode === null && child.signalCode === null) return;
      const c = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
      child = c;
      const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
      for (let i = 0; i < 50 && c.exitCode === null; i++) {
        try {
          await probe.connect();
          await probe.ping();
          await probe.quit();
          return;
        } catch {
          probe.disconnect();
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      c.kill("SIGKILL");
      throw new Error(`redis-server did not start on port ${port}`);
    };
    const kill = async () => {
      const c = child;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once("exit", r));
      c.kill("SIGKILL");
      await exited;
    };
    try {
      await start();
    } catch {
      await kill();
      continue;
    }
    return { url, kill, start, close: kill };
  }
  throw new Error(`no free port for a private redis-server among ${RESTARTABLE_PORTS.join(", ")}`);
}
