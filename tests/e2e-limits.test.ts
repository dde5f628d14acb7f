// Two worker processes share the provider's limits through Redis: with LLM_REQUESTS_PER_MINUTE set to what the fake provider enforces, both send requests, together they stay under the limit and are (almost) never answered 429.
import { act, uploadBatch } from "./support/e2e";
import { createSystem, waitFor, waitForStatus, type TestSystem } from "./support/system";

const RPM = 120;
const BURST_S = 1;
const DOCS = 24;

let s: TestSystem;
beforeAll(async () => {
  s = await createSystem({
    workers: false,
    fake: { limits: { requestsPerMinute: RPM, burstMs: BURST_S * 1000 }, latencyMs: 50 },
    env: { LLM_REQUESTS_PER_MINUTE: String(RPM), LLM_RATE_BURST_SECONDS: String(BURST_S), ANALYSIS_CONCURRENCY: "4", DISPATCH_WINDOW: "8" },
  });
});
afterAll(() => s.close());

test("two worker processes together use the shared request limit and stay under it", async () => {
  s.spawnWorker({ OPENAI_API_KEY: "worker-a" });
  s.spawnWorker({ OPENAI_API_KEY: "worker-b" });
  const id = await uploadBatch(s, { texts: DOCS });
  await act(s, id, "stage");
  await waitForStatus(s, id, "STAGED", 90_000);
  await act(s, id, "run");
  const done = await waitForStatus(s, id, "COMPLETED", 120_000);
  expect(done).toMatchObject({ succeeded: DOCS, failed: 0 });
  await waitFor("every request answered", async () => s.fake.requests.every((r) => r.status !== 0));

  const answered = s.fake.requests.filter((r) => r.status === 200);
  const refused = s.fake.requests.filter((r) => r.status === 429);
  expect(answered).toHaveLength(DOCS);
  expect(refused.length).toBeLessThanOrEqual(1);
  expect(new Set(answered.map((r) => r.apiKey))).toEqual(new Set(["worker-a", "worker-b"]));
  // After the first burst, at most one request per 1/RPM minute. How close to the limit they get is
  // a throughput figure for `npm run bench:limits`, not for a test on a shared machine.
  const times = answered.map((r) => r.at).sort((a, b) => a - b);
  const burst = RPM * (BURST_S / 60);
  const steady = (times.length - burst) / ((times[times.length - 1]! - times[0]!) / 60_000);
  expect(steady).toBeLessThanOrEqual(RPM * 1.1);
}, 240_000);
