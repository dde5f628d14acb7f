// An LLM answer carrying characters PostgreSQL cannot store (NUL, a lone surrogate) is stored cleaned and its task succeeds, without a second (paid) provider call.
import { act } from "./support/e2e";
import { replies } from "./support/fake-llm";
import { createSystem, waitForStatus, type TestSystem } from "./support/system";

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
