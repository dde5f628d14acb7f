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
