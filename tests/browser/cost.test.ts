// Cost in the web UI, in a real browser: a staged batch shows its estimate before Run, the table shows what a running batch spent of its budget beside its progress, the batch page says it paused because of its budget, and its form sets a new budget.
import type { Browser, Locator, Page } from "playwright-core";
import { runningTasks } from "../support/drive";
import { describeInBrowser, launchBrowser, startTranche, type Tranche } from "./support";

const WAIT_MS = 15_000;

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const textOf = async (locator: Locator) => (await locator.first().innerText()).replace(/\s+/g, " ").trim();
async function untilText(what: string, locator: Locator, pattern: RegExp): Promise<void> {
  let seen = "";
  await until(what, async () => pattern.test((seen = await textOf(locator)))).catch((err: Error) => {
    throw new Error(`${err.message}: expected ${pattern}, saw "${seen}"`);
  });
}

describeInBrowser("cost in the web UI", () => {
  let tranche: Tranche;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    tranche = await startTranche();
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await tranche?.close();
  });

  test("estimate before Run, spend of the budget beside progress, a budget pause, and the budget form", async () => {
    const { service, prisma } = tranche.driver;
    const id = await service.createBatch({
      name: "priced",
      analysis: { instructions: "Summarise.", provider: "openai", model: "gpt-4o-mini", max_tokens: 100, price: { input_per_mtok: 1000, output_per_mtok: 1000 } },
      priority: 0,
      window: 4,
      stagingTolerance: 0,
      failureTolerance: 0,
      budgetUsd: 0.25,
      documents: Array.from({ length: 4 }, (_, i) => ({ name: `doc-${i}.txt`, mimeType: "text/plain", content: Buffer.from(`Document number ${i}.`) })),
    });
    await service.requestStateChange(id, "stage");
    const staging = await prisma.batch.findUniqueOrThrow({ where: { id } });
    // Each document's plan: one request of 100 input tokens, its answer at most 100: $0.2 at most.
    const plan = { strategy: "single" as const, requests: 1, inputTokens: 100, requestsMax: 1, inputTokensMax: 100, outputTokensMax: 100 };
    for (const doc of await prisma.document.findMany({ where: { batchId: id } })) {
      await service.report({
        type: "DOCUMENT_STAGED", batchId: id, runId: staging.runId, documentId: doc.id,
        text: "text", chunks: [{ index: 0, text: "text", tokens: 1, start: 0, end: 4 }], tokenCount: 1, textSha256: "0".repeat(64), plan,
      });
    }

    await page.goto(tranche.url);
    const row = page.locator(`tr[data-batch-id="${id}"]`);
    await untilText("the estimate in the table", row.locator('[data-testid="estimate"]'), /at most \$0\.8000 to run/);
    await page.goto(`${tranche.url}/batches/${id}`);
    await untilText("the estimate on the batch page", page.locator('[data-testid="estimate"]'), /at most \$0\.8000 for 4 documents on gpt-4o-mini/);
    await untilText("the budget", page.locator('[data-testid="spent"]'), /Spent: \$0\.0000 of a \$0\.2500 budget/);

    // Run: the first task fits the budget, the second does not and the batch pauses itself.
    await service.requestStateChange(id, "run");
    const [first, second] = await runningTasks(prisma, id);
    expect((await service.report({ type: "TASK_STARTED", batchId: id, runId: staging.runId, taskId: first!.id })).outcome).toBe("accepted");
    await service.report({ type: "TASK_COMPLETED", batchId: id, runId: staging.runId, taskId: first!.id, output: { ok: true }, requests: 1, inputTokens: 80, outputTokens: 20, costUsd: 0.1 });
    expect((await service.report({ type: "TASK_STARTED", batchId: id, runId: staging.runId, taskId: second!.id })).code).toBe("over_budget");

    await page.goto(tranche.url);
    await untilText("the spend beside the progress", row.locator('[data-testid="spend"]'), /\$0\.1000 spent of \$0\.2500 budget · paused by budget/);
    await page.goto(`${tranche.url}/batches/${id}`);
    await untilText("why it paused", page.locator('[data-testid="pause-reason"]'), /Paused by its budget/);
    await untilText("the budget's message", page.locator('[data-testid="last-error"]'), /budget reached: spent \$0\.1000 of \$0\.2500/);

    await page.locator('input[name="budget_usd"]').fill("2");
    await page.getByRole("button", { name: "Set budget", exact: true }).click();
    await until("the new budget stored", async () => (await prisma.batch.findUniqueOrThrow({ where: { id } })).budgetUsd === 2);
    await untilText("the new budget shown", page.locator('[data-testid="spent"]'), /of a \$2\.00 budget/);
  }, 60_000);
});
