// Provider failures through the real OpenAI SDK: a 429 with Retry-After is waited out and the batch completes; a 401 fails the batch once, with a clear error, instead of failing every document.
import { replies } from "./support/fake-llm";
import { act, uploadBatch } from "./support/e2e";
import { createSystem, waitForStatus, type TestSystem } from "./support/system";

let s: TestSystem;
beforeAll(async () => {
  s = await createSystem();
});
afterAll(() => s.close());

test("429 with Retry-After is retried and the batch completes", async () => {
  s.fake.setBehaviour({ respond: (body, n) => (n <= 2 ? replies.rateLimited({ seconds: 1 }) : replies.default(body)) });
  const id = await uploadBatch(s, { texts: 3 });
  await act(s, id, "stage");
  await waitForStatus(s, id, "STAGED");
  await act(s, id, "run");
  const done = await waitForStatus(s, id, "COMPLETED");
  expect(done).toMatchObject({ succeeded: 3, failed: 0 });
  const statuses = s.fake.requests.map((r) => r.status);
  expect(statuses.filter((x) => x === 429)).toHaveLength(2);
  expect(statuses.filter((x) => x === 200)).toHaveLength(3);
  // The retry honoured the header: no second attempt within a second of its 429.
  const limited = s.fake.requests.filter((r) => r.status === 429);
  const after = s.fake.requests.filter((r) => r.status === 200);
  expect(Math.max(...after.map((r) => r.at)) - Math.min(...limited.map((r) => r.at))).toBeGreaterThanOrEqual(950);
});

test("401 fails the batch once with a clear error", async () => {
  s.fake.setBehaviour({ respond: () => replies.unauthorized() });
  const before = s.fake.requests.length;
  const id = await uploadBatch(s, { texts: 20 });
  await act(s, id, "stage");
  await waitForStatus(s, id, "STAGED");
  await act(s, id, "run");
  const failed = await waitForStatus(s, id, "FAILED");
  expect(failed.lastError).toMatch(/openai/i);
  expect(failed.lastError).toMatch(/401|credential|auth|key/i);
  expect(await s.db.prisma.historyEntry.count({ where: { batchId: id, eventType: "FATAL_ERROR", outcome: "accepted" } })).toBe(1);
  // Only the tasks already in flight reached the provider, not all 20.
  expect(s.fake.requests.length - before).toBeLessThanOrEqual(4);
});
