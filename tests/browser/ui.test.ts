// The web UI in a real browser against a real Tranche (the operators' BullMQ dashboard included): upload documents into a new batch, stage and run it from the table, watch progress move without a reload, pause and resume, see a refused action's reason, read the batch's documents and history, follow it in the machine visualizer, reorder the queue, fall back to polling without the live stream, and notice an unreachable server.
import type { Browser, Locator, Page } from "playwright-core";
import { createBatch, finishTasks, runningTasks, stageAll } from "../support/drive";
import { describeInBrowser, launchBrowser, screenshot, startTranche, type Tranche } from "./support";

const WAIT_MS = 15_000;

/** Polls `check` until it returns true; playwright-core has no retrying expect. */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The text as rendered (innerText), whitespace folded. */
const textOf = async (locator: Locator) => (await locator.first().innerText()).replace(/\s+/g, " ").trim();
async function untilText(what: string, locator: Locator, pattern: RegExp): Promise<void> {
  let seen = "";
  await until(what, async () => pattern.test((seen = await textOf(locator)))).catch((err: Error) => {
    throw new Error(`${err.message}: expected ${pattern}, saw "${seen}"`);
  });
}

describeInBrowser("the web UI", () => {
  let tranche: Tranche;
  let browser: Browser;
  let page: Page;
  let batchId = "";

  const row = (id: string) => page.locator(`tr[data-batch-id="${id}"]`);
  const button = (scope: Locator, name: string) => scope.getByRole("button", { name, exact: true });
  const state = (id: string) => row(id).locator('[data-testid="state"]');

  /** Reports `n` of the batch's running tasks as completed, as workers would. */
  async function completeTasks(id: string, n: number) {
    const batch = await tranche.driver.prisma.batch.findUniqueOrThrow({ where: { id } });
    for (const task of (await runningTasks(tranche.driver.prisma, id)).slice(0, n)) {
      await tranche.driver.service.report({ type: "TASK_COMPLETED", batchId: id, runId: batch.runId, taskId: task.id, output: { parties: ["Acme", "Globex"] }, inputTokens: 812, outputTokens: 64 });
    }
  }

  beforeAll(async () => {
    tranche = await startTranche();
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await tranche?.close();
  });

  test("with no batches yet the table says so", async () => {
    await page.goto(tranche.url);
    await untilText("the empty state", page.locator(".notice"), /No batches yet/);
  });

  test("a new batch is created from documents dropped and picked in the form", async () => {
    await page.getByRole("link", { name: "New batch" }).first().click();
    await page.locator('input[name="name"]').fill("Q3 contracts");
    await page.locator('textarea[name="instructions"]').fill("List the parties and the termination clause.");

    await page.locator('textarea[name="output_schema"]').fill("{ not json");
    await untilText("the schema problem", page.locator(".field-error"), /not valid JSON/);
    expect(await page.getByRole("button", { name: /Create batch/ }).isDisabled()).toBe(true);
    await page.locator('textarea[name="output_schema"]').fill('{ "type": "object", "properties": { "parties": { "type": "array" } } }');
    await page.locator('select[name="provider"]').selectOption("local");
    await page.locator('input[name="model"]').fill("echo");
    await page.locator('input[name="failure_tolerance"]').fill("0.2");

    const dropped = [
      { name: "acme-globex-msa.txt", type: "text/plain", text: "This agreement between Acme and Globex may be terminated on 90 days notice." },
      { name: "initech-nda.md", type: "text/markdown", text: "# NDA\n\nInitech and Hooli agree to keep secrets." },
    ];
    await page.evaluate(`(() => {
      const dt = new DataTransfer();
      for (const f of ${JSON.stringify(dropped)}) dt.items.add(new File([f.text], f.name, { type: f.type }));
      const zone = document.querySelector('[data-testid="dropzone"]');
      for (const type of ["dragover", "drop"]) zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    })()`);
    await page.setInputFiles('[data-testid="file-input"]', [
      { name: "umbrella-lease.html", mimeType: "text/html", buffer: Buffer.from("<h1>Lease</h1><p>Umbrella Corp leases the lab to Wayne Enterprises.</p>") },
    ]);
    await untilText("three files listed", page.locator('[data-testid="file-list"]'), /acme-globex-msa\.txt.*initech-nda\.md.*umbrella-lease\.html/);
    await screenshot(page, "create");

    await page.getByRole("button", { name: "Create batch with 3 documents" }).click();
    await page.waitForURL(/\/batches\/[0-9a-f-]{36}$/);
    batchId = page.url().split("/").pop() ?? "";
    await untilText("the documents", page.locator('[data-testid="documents"]'), /acme-globex-msa\.txt.*initech-nda\.md.*umbrella-lease\.html/);

    const stored = await tranche.harness.engine.queries.getBatch(batchId);
    expect(stored).toMatchObject({ name: "Q3 contracts", status: "SAVED", document_count: 3 });
    expect(stored.analysis).toEqual({
      instructions: "List the parties and the termination clause.",
      output_schema: { type: "object", properties: { parties: { type: "array" } } },
      provider: "local",
      model: "echo",
      failure_tolerance: 0.2,
    });
  });

  test("it is staged and run from the table, and its progress moves without a reload", async () => {
    await page.getByRole("link", { name: "Batches" }).click();
    await page.evaluate("window.__sameDocument = true");
    await untilText("the batch in the table", row(batchId), /Q3 contracts/);
    expect(await button(row(batchId), "run").isDisabled()).toBe(true);

    await button(row(batchId), "stage").click();
    await untilText("staging", state(batchId), /^STAGING$/);
    await stageAll(tranche.driver, batchId);
    await untilText("staged, seen by polling or the live stream", state(batchId), /^STAGED$/);
    await button(row(batchId), "run").click();
    await untilText("running", state(batchId), /^ANALYZING running$/);

    const progress = row(batchId).locator('[data-testid="progress"]');
    await untilText("every task in flight", progress, /0 succeeded .* 3 in flight/);
    await completeTasks(batchId, 1);
    await untilText("one task done", progress, /1 succeeded .* 2 in flight/);
    await completeTasks(batchId, 1);
    await untilText("two tasks done", progress, /2 succeeded .* 1 in flight/);
    expect(await page.evaluate("window.__sameDocument")).toBe(true);
  });

  test("it is paused and resumed from the table", async () => {
    await button(row(batchId), "pause").click();
    await untilText("paused", state(batchId), /^PAUSED$/);
    expect(await button(row(batchId), "pause").isDisabled()).toBe(true);
    expect(await button(row(batchId), "resume").isEnabled()).toBe(true);

    await button(row(batchId), "resume").click();
    await untilText("analysing again", state(batchId), /^ANALYZING/);
    await finishTasks(tranche.driver, batchId);
    await untilText("completed", state(batchId), /^COMPLETED$/);
    expect(await textOf(row(batchId).locator('[data-testid="progress"]'))).toMatch(/3 succeeded/);
  });

  test("a refused action shows the server's reason and the row catches up", async () => {
    const other = await createBatch(tranche.driver, { name: "Board minutes 2025", documents: 2 });
    await untilText("the second batch", row(other), /Board minutes 2025/);
    // While the user confirms the delete, someone else stages the batch: the server refuses.
    page.once("dialog", (dialog) => {
      void tranche.driver.service.requestStateChange(other, "stage", { reason: "someone else" }).then(() => dialog.accept());
    });
    await button(row(other), "delete").click();
    await untilText("the refusal", row(other).locator(".action-error"), /Cannot delete batch in STAGING state/);
    await untilText("the row refreshed", state(other), /^STAGING$/);
    await screenshot(page, "refused");
    expect(await button(row(other), "delete").isDisabled()).toBe(true);
    expect(await button(row(other), "cancel").isEnabled()).toBe(true);
  });

  test("the batch page shows documents, results when the server has them, and the history", async () => {
    await row(batchId).getByRole("link", { name: "Q3 contracts" }).click();
    await untilText("the documents", page.locator('[data-testid="documents"]'), /acme-globex-msa\.txt.*succeeded/);
    const history = page.locator('[data-testid="history"]');
    await untilText("the history", history, /resume.*pause.*run.*stage/);
    expect(await textOf(history)).toMatch(/accepted/);
    expect(await textOf(history)).toMatch(/requested from the web UI/);
    const results = await page.request.get(`${tranche.url}/api/batches/${batchId}/results?format=json`);
    if (results.ok()) await untilText("the results", page.locator('[data-testid="documents"]'), /result.*succeeded.*\d+ in \/ \d+ out tokens/i);
    else await untilText("the missing results noted", page.locator(".card", { hasText: "Documents" }), /does not offer results yet/);
    await screenshot(page, "batch-detail");
  });

  test("the visualizer highlights the batch's state, lists its allowed actions and its path", async () => {
    await page.getByRole("link", { name: "See this batch in the machine visualizer" }).click();
    await page.waitForURL(/\/machine\?batch=/);
    await until("the diagram drawn", async () => (await page.locator("#diagram").getAttribute("data-rendered")) === "true");
    expect(await textOf(page.locator('[data-testid="current-state"]'))).toBe("COMPLETED");
    expect(await textOf(page.locator(".allowed-actions"))).toMatch(/reset.*restage.*rerun.*delete/);
    expect(await textOf(page.locator(".state-path"))).toMatch(/SAVED.*STAGING.*STAGED.*ANALYZING\.running.*PAUSED.*COMPLETED/);
    // Mermaid gives the node the class of its classDef: the current state is drawn highlighted.
    const current = page.locator("#diagram svg g.current");
    expect(await current.count()).toBe(1);
    expect((await current.textContent())?.trim()).toBe("COMPLETED");
    expect(await page.locator("#diagram svg g.visited").count()).toBeGreaterThan(3);
    await screenshot(page, "machine");

    const mmd = await page.request.get(`${tranche.url}/machine/diagram.mmd?batch=${batchId}`);
    expect(await mmd.text()).toMatch(/class COMPLETED current/);
  });

  test("the queue shows running and waiting batches, and reorders them", async () => {
    const d = tranche.driver;
    const start = async (name: string, documents: number) => {
      const id = await createBatch(d, { name, documents, failureTolerance: 0 });
      await d.service.requestStateChange(id, "stage");
      await stageAll(d, id);
      await d.service.requestStateChange(id, "run");
      return id;
    };
    const failed = await start("Supplier invoices (October)", 3);
    await finishTasks(d, failed, () => true);
    const running = await start("Customer emails", 6);
    await completeTasks(running, 2);
    const first = await start("Policy PDFs", 4);
    const second = await start("Press releases", 5);

    await page.goto(`${tranche.url}/queue`);
    const rows = page.locator("table.queue tbody tr");
    const order = async () => Promise.all(Array.from({ length: await rows.count() }, (_, i) => rows.nth(i).getAttribute("data-batch-id")));
    await until("the queue in order", async () => JSON.stringify(await order()) === JSON.stringify([running, first, second]));
    await page.getByRole("button", { name: "Move Policy PDFs down" }).click();
    await until("the queue reordered", async () => JSON.stringify(await order()) === JSON.stringify([running, second, first]));
    expect((await tranche.harness.engine.queries.getBatch(second)).queue_position).toBe(1);
    await screenshot(page, "queue");

    await page.getByRole("link", { name: "Batches" }).click();
    await untilText("the failed batch's error", row(failed).locator('[data-testid="last-error"]'), /\d of 3 tasks failed/);
    await untilText("a queued batch's position", row(first).locator('[data-testid="queue-position"]'), /#2/);
    await screenshot(page, "batches");
  });

  test("without the live stream the page polls, says so, and still follows progress", async () => {
    const polling = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    try {
      await polling.route("**/api/events", (route) => route.abort());
      await polling.goto(tranche.url);
      await untilText("the reconnecting note", polling.locator(".live"), /live updates reconnecting/);
      const running = (await tranche.harness.engine.queries.getQueue(1)).running[0]?.id ?? "";
      const progress = polling.locator(`tr[data-batch-id="${running}"] [data-testid="progress"]`);
      await untilText("the running batch", progress, /2 succeeded/);
      await completeTasks(running, 1);
      await untilText("progress seen by polling", progress, /3 succeeded/);
    } finally {
      await polling.close();
    }
  });

  test("operators get the BullMQ dashboard over Tranche's queues", async () => {
    const dashboard = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    try {
      await dashboard.goto(`${tranche.url}/admin/queues`);
      await until("the dashboard's queues", async () => /staging/.test(await dashboard.innerText("body")) && /analysis/.test(await dashboard.innerText("body")));
      expect(await dashboard.title()).toMatch(/Tranche queues/);
      await screenshot(dashboard, "dashboard");
    } finally {
      await dashboard.close();
    }
  });

  test("an unreachable server is said to be so", async () => {
    await tranche.stop();
    await untilText("the unreachable notice", page.locator(".notice-error"), /Server unreachable/);
    await untilText("the live note", page.locator(".live"), /live updates reconnecting/);
    await screenshot(page, "unreachable");
  });
});
