/** A test system's API on a real loopback port, with the live stream and readiness wired as `npm start` wires them. */
import type { AddressInfo } from "node:net";
import { createApp } from "../../src/server/app";
import { createLiveStream, type BatchChange } from "../../src/server/live";
import { testConfig, testLogger } from "./harness";
import type { TestSystem } from "./system";

export interface Served {
  url: string;
  close(): Promise<void>;
}

export async function serve(s: TestSystem): Promise<Served> {
  const live = await createLiveStream({ databaseUrl: s.db.url, prisma: s.db.prisma, logger: testLogger, reconnectMs: 200 });
  const app = createApp({
    ...s.engine,
    logger: testLogger,
    bodyLimit: "1mb",
    config: testConfig,
    redisReady: s.background.redisReady,
    apiMounts: [live.router],
  });
  const server = app.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await live.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** An open `GET /api/events` stream, collecting every batch change with the time it arrived. */
export async function openEvents(url: string) {
  const controller = new AbortController();
  const res = await fetch(`${url}/api/events`, { signal: controller.signal });
  const received: (BatchChange & { receivedAt: number })[] = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const pump = (async () => {
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = frame.split("\n").find((l) => l.startsWith("data: "));
        if (data) received.push({ ...(JSON.parse(data.slice(6)) as BatchChange), receivedAt: Date.now() });
      }
    }
  })();
  return {
    received,
    close: async () => {
      controller.abort();
      await pump;
    },
  };
}
