// Model answers are checked off the main event loop, under a time limit: a schema with `uniqueItems` and a crafted answer of 30,000 distinct objects (Ajv compares every pair: about half a minute on the main thread) fails each task with the limit as its reason, one provider request per task and no re-ask, while /api/health answers within a second throughout. The pool itself: a check past its limit has its thread terminated and the next check is answered by a fresh one.
import { countTokens } from "gpt-tokenizer";
import request from "supertest";
import { AnswerCheckError, createAnswerChecker } from "../src/workers/answer-check";
import { act, documentOf, uploadBatch } from "./support/e2e";
import { replies } from "./support/fake-llm";
import { createSystem, waitForStatus, type TestSystem } from "./support/system";

const N = 3;
const LIMIT_MS = 2000;
const SCHEMA = { type: "object", properties: { items: { type: "array", uniqueItems: true, items: { type: "object" } } }, required: ["items"] };
const crafted = JSON.stringify({ items: Array.from({ length: 30_000 }, (_, i) => ({ k: i })) });

describe("a crafted answer against uniqueItems", () => {
  let s: TestSystem;
  beforeAll(async () => {
    s = await createSystem({ env: { ANSWER_CHECK_TIMEOUT_MS: String(LIMIT_MS) } });
  });
  afterAll(() => s?.close());

  test("fails its task at the limit, once, without stalling /api/health", async () => {
    // Usage is reported, so nothing needs to count the answer's tokens.
    s.fake.setBehaviour({ respond: () => replies.completion(crafted, { usage: { prompt: 50, completion: 20 } }) });
    const id = await uploadBatch(s, { texts: N, analysis: { output_schema: SCHEMA, failure_tolerance: 1 } });
    await act(s, id, "stage");
    await waitForStatus(s, id, "STAGED");
    await act(s, id, "run");

    let slowest = 0;
    let probes = 0;
    let done = false;
    const finished = waitForStatus(s, id, "COMPLETED", 60_000).finally(() => {
      done = true;
    });
    while (!done) {
      const t = performance.now();
      await request(s.app).get("/api/health").expect(200);
      slowest = Math.max(slowest, performance.now() - t);
      probes++;
      await new Promise((r) => setTimeout(r, 20));
    }
    const batch = await finished;
    process.stdout.write(`answer check attack: ${probes} health probes, slowest ${slowest.toFixed(0)} ms\n`);
    expect(batch).toMatchObject({ succeeded: 0, failed: N });
    const tasks = await s.db.prisma.task.findMany({ where: { batchId: id } });
    for (const task of tasks) expect(JSON.stringify(task)).toMatch(new RegExp(`took longer than ${LIMIT_MS} ms`));
    // Neither re-asked nor retried: one paid request per document.
    expect(new Set(s.fake.requests.map((r) => documentOf(r.body))).size).toBe(N);
    expect(s.fake.requests).toHaveLength(N);
    expect(slowest).toBeLessThan(1000);
  }, 90_000);
});

test("a check past its limit terminates its thread; the next check gets a fresh one", async () => {
  const checker = createAnswerChecker({ threads: 1, timeoutMs: 500 });
  try {
    const slow = checker.check(SCHEMA, crafted);
    await expect(slow).rejects.toBeInstanceOf(AnswerCheckError);
    await expect(slow).rejects.toThrow(/took longer than 500 ms/);
    await expect(checker.check(SCHEMA, '{"items":[{"k":1},{"k":1}]}')).resolves.toEqual({
      ok: false,
      problems: [expect.stringMatching(/must NOT have duplicate items/)],
    });
    await expect(checker.check(SCHEMA, '```json\n{"items":[{"k":1}]}\n```')).resolves.toEqual({ ok: true, value: { items: [{ k: 1 }] } });
    await expect(checker.compile({ $ref: "#/nowhere" })).resolves.toMatch(/can't resolve reference/);
    await expect(checker.count("Ada Lovelace met Babbage.")).resolves.toBe(countTokens("Ada Lovelace met Babbage."));
  } finally {
    await checker.close();
  }
}, 30_000);
