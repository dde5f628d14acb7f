// A hostile output_schema: a catastrophic pattern (^(a+)+$) against a crafted model answer runs on RE2 in the worker, so the batch finishes with the answer judged invalid and /api/health keeps answering within a second throughout; the same pattern on JavaScript's own engine would hang the process.
import request from "supertest";
import { replies } from "./support/fake-llm";
import { act, uploadBatch } from "./support/e2e";
import { createSystem, waitForStatus, type TestSystem } from "./support/system";

let s: TestSystem;
beforeAll(async () => {
  // No re-ask: a re-ask sends the answer back, and counting its tokens is a cost of its own.
  s = await createSystem({ env: { LLM_OUTPUT_RETRIES: "0" } });
});
afterAll(() => s.close());

const EVIL = "^(a+)+$";
// Backtracking engines need about 2^n steps for n a's followed by a character that cannot match:
// 2^40 here, hours of a blocked event loop. Usage is reported, so nothing re-counts the answer.
const crafted = JSON.stringify({ verdict: `${"a".repeat(40)}!` });

test("the crafted answer is judged invalid without stalling the event loop", async () => {
  // On V8's engine 24 a's already take a noticeable time, doubling with each one: this answer is the attack it claims to be.
  const started = Date.now();
  expect(new RegExp(EVIL).test(`${"a".repeat(24)}!`)).toBe(false);
  expect(Date.now() - started).toBeGreaterThan(20);

  s.fake.setBehaviour({ respond: () => replies.completion(crafted, { usage: { prompt: 50, completion: 20 } }) });
  const id = await uploadBatch(s, {
    texts: 3,
    analysis: { output_schema: { type: "object", properties: { verdict: { type: "string", pattern: EVIL } }, required: ["verdict"] }, failure_tolerance: 1 },
  });
  await act(s, id, "stage");
  await waitForStatus(s, id, "STAGED");
  await act(s, id, "run");

  let slowest = 0;
  let done = false;
  const finished = waitForStatus(s, id, "COMPLETED", 60_000).finally(() => {
    done = true;
  });
  while (!done) {
    const t = Date.now();
    await request(s.app).get("/api/health").expect(200);
    slowest = Math.max(slowest, Date.now() - t);
    await new Promise((r) => setTimeout(r, 20));
  }
  const batch = await finished;
  expect(batch).toMatchObject({ succeeded: 0, failed: 3 });
  // Every task's answer reached validation (a job re-run under load may ask again), and none hung.
  expect(s.fake.requests.length).toBeGreaterThanOrEqual(3);
  const task = await s.db.prisma.task.findFirstOrThrow({ where: { batchId: id } });
  expect(JSON.stringify(task)).toMatch(/must match pattern/);
  expect(slowest).toBeLessThan(1000);
});
