// Characters PostgreSQL cannot store (NUL, lone surrogates): the cleaning applied to document text and LLM answers, and an answer carrying both stored cleaned instead of failing its transaction.
import { storableJson, storableText } from "../src/storable-text";
import { act } from "./support/e2e";
import { replies } from "./support/fake-llm";
import { createSystem, waitForStatus, type TestSystem } from "./support/system";

describe("storableText", () => {
  it.each([
    ["a\u0000b", "ab"],
    ["lone high \uD800 here", "lone high \uFFFD here"],
    ["lone low \uDC00 here", "lone low \uFFFD here"],
    ["reversed \uDC00\uD800", "reversed \uFFFD\uFFFD"],
    ["a pair 😀 stays", "a pair 😀 stays"],
    ["plain", "plain"],
  ])("%j → %j", (input, expected) => {
    expect(storableText(input)).toBe(expected);
  });

  it("cleans every string of a JSON value, keys included", () => {
    expect(storableJson({ "k\u0000": ["x\uD800", 1, null, { y: "\u0000z" }], n: 2, b: true })).toEqual({
      k: ["x\uFFFD", 1, null, { y: "z" }],
      n: 2,
      b: true,
    });
  });
});

describe("an LLM answer with a NUL and a lone surrogate", () => {
  let s: TestSystem;
  beforeAll(async () => {
    s = await createSystem({ fake: { respond: () => replies.completion("Parties: Ada\u0000 and Charles \uD800Babbage.") } });
  });
  afterAll(() => s.close());

  test("is stored cleaned and the task succeeds", async () => {
    const batchId = await s.engine.service.createBatch({
      name: "nul answer",
      analysis: { instructions: "List the parties." },
      priority: 0,
      window: 4,
      stagingTolerance: 0,
      failureTolerance: 0,
      documents: [{ name: "contract.txt", mimeType: "text/plain", content: Buffer.from("Ada Lovelace and Charles Babbage agree.") }],
    });
    await act(s, batchId, "stage");
    await waitForStatus(s, batchId, "STAGED");
    await act(s, batchId, "run");
    await waitForStatus(s, batchId, "COMPLETED");
    const task = await s.db.prisma.task.findFirstOrThrow({ where: { batchId } });
    expect(task.status).toBe("succeeded");
    expect(task.output).toBe("Parties: Ada and Charles \uFFFDBabbage.");
    expect(s.fake.requests).toHaveLength(1);
  });
});
