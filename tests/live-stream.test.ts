// The live stream's Last-Event-ID is validated and bounded: garbage is a 400 before the stream opens, an id older than the replay window gets one resync event instead of every batch since 1970, and a recent id replays what changed since.
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createApp } from "../src/server/app";
import { createLiveStream, parseLastEventId, REPLAY_WINDOW_MS } from "../src/server/live";
import { createBatch } from "./support/drive";
import { createHarness, testConfig, testLogger, type Harness } from "./support/harness";

let h: Harness;
let server: Server;
let url: string;
let closeLive: () => Promise<void>;

beforeAll(async () => {
  h = await createHarness();
  const live = await createLiveStream({ databaseUrl: h.db.url, prisma: h.db.prisma, logger: testLogger });
  closeLive = live.close;
  const app = createApp({ ...h.engine, config: testConfig, logger: testLogger, bodyLimit: "1mb", apiMounts: [live.router] });
  server = await new Promise((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/events`;
});
afterAll(async () => {
  await closeLive();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await h.close();
});

/** Opens the stream, reads until `until` appears in what arrived (or 3 s pass), and closes it. */
async function read(lastEventId: string | undefined, until: RegExp): Promise<{ status: number; text: string }> {
  const controller = new AbortController();
  const res = await fetch(url, { headers: lastEventId === undefined ? {} : { "last-event-id": lastEventId }, signal: controller.signal });
  if (!res.headers.get("content-type")?.startsWith("text/event-stream")) return { status: res.status, text: await res.text() };
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = setTimeout(() => controller.abort(), 3000);
  try {
    while (!until.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
  } catch (err) {
    // Aborted at the deadline: return what arrived; anything else is a real failure.
    if (!controller.signal.aborted) throw err;
  } finally {
    clearTimeout(deadline);
    controller.abort();
  }
  return { status: res.status, text };
}

test.each(["1e300", "-5", "abc", "1".repeat(30), String(Date.now() + 24 * 3600_000)])("Last-Event-ID %s is a 400, not a 500 inside the stream", async (id) => {
  const res = await read(id, /never/);
  expect(res.status).toBe(400);
  expect(JSON.parse(res.text)).toMatchObject({ success: false, code: "validation_failed", error: expect.stringMatching(/Last-Event-ID/) });
});

test("an id older than the replay window gets a resync, not every batch since 1970", async () => {
  await createBatch({ service: h.engine.service, prisma: h.db.prisma });
  const res = await read("1", /event: resync/);
  expect(res.status).toBe(200);
  expect(res.text).toMatch(/event: resync/);
  expect(res.text).not.toMatch(/event: batch/);
});

test("a recent id replays exactly the batches changed since", async () => {
  const before = await createBatch({ service: h.engine.service, prisma: h.db.prisma }, { name: "before" });
  const row = await h.db.prisma.batch.findUniqueOrThrow({ where: { id: before } });
  await new Promise((r) => setTimeout(r, 5));
  const after = await createBatch({ service: h.engine.service, prisma: h.db.prisma }, { name: "after" });
  const res = await read(String(row.updatedAt.getTime()), new RegExp(after));
  expect(res.text).toContain(after);
  expect(res.text).not.toContain(before);
});

test("parseLastEventId takes commit times within the clock skew and no header at all", () => {
  const now = Date.now();
  expect(parseLastEventId(undefined, now)).toBeUndefined();
  expect(parseLastEventId(String(now - REPLAY_WINDOW_MS), now)).toBe(now - REPLAY_WINDOW_MS);
  expect(parseLastEventId(String(now + 1000), now)).toBe(now + 1000);
});
