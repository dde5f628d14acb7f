// The batch page reads a large batch one page at a time: 250 documents show as pages of 100 with their results, and a long history as pages of 50, newest first, older pages on demand.
import type { Browser, Page } from "playwright-core";
import { createBatch } from "../support/drive";
import { describeInBrowser, launchBrowser, screenshot, startTranche, type Tranche } from "./support";

const WAIT_MS = 15_000;

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describeInBrowser("paging on the batch page", () => {
  let tranche: Tranche;
  let browser: Browser;
  let page: Page;
  let batchId = "";

  beforeAll(async () => {
    tranche = await startTranche();
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    batchId = await createBatch(tranche.driver, { documents: 250, name: "big batch" });
    // 60 refused requests after `created`: 61 history entries, more than one page of 50.
    for (let i = 0; i < 60; i++) await tranche.driver.service.requestStateChange(batchId, "run", { reason: `try ${i}` }).catch(() => undefined);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await tranche?.close();
  });

  const rows = () => page.locator('[data-testid="documents"] tbody tr');
  const firstName = async () => (await rows().first().locator("td").first().innerText()).trim();
  const seqs = async () => (await page.locator('[data-testid="history"] .seq').allInnerTexts()).map((t) => Number(t.replace("#", "")));

  test("documents come 100 to a page, with next and previous", async () => {
    await page.goto(`${tranche.url}/batches/${batchId}`);
    await until("the first page of documents", async () => (await rows().count()) === 100);
    expect(await firstName()).toBe("doc-0.txt");
    const pager = page.locator('[data-testid="documents-pager"]');
    expect(await pager.innerText()).toMatch(/documents 1–100 of 250/);
    await pager.getByRole("button", { name: "Next" }).click();
    await until("the second page", async () => (await firstName()) === "doc-100.txt");
    await pager.getByRole("button", { name: "Next" }).click();
    await until("the last page", async () => (await rows().count()) === 50);
    expect(await firstName()).toBe("doc-200.txt");
    expect(await pager.innerText()).toMatch(/documents 201–250 of 250/);
    expect(await pager.getByRole("button", { name: "Next" }).isDisabled()).toBe(true);
    await pager.getByRole("button", { name: "Previous" }).click();
    await until("back on the second page", async () => (await firstName()) === "doc-100.txt");
    // Each page's results come with it (fetched beside its documents): a not yet staged document reads so.
    await until("the page's results", async () => /not_staged/.test(await rows().first().innerText()));
  });

  test("history shows the newest 50 entries first, then older pages", async () => {
    await until("the newest history page", async () => (await seqs()).length === 50);
    expect((await seqs())[0]).toBe(61);
    expect((await seqs())[49]).toBe(12);
    const pager = page.locator('[data-testid="history-pager"]');
    await pager.getByRole("button", { name: "Older" }).click();
    await until("the older page", async () => (await seqs())[0] === 11);
    expect(await seqs()).toEqual(Array.from({ length: 11 }, (_, i) => 11 - i));
    expect(await pager.getByRole("button", { name: "Older" }).isDisabled()).toBe(true);
    await screenshot(page, "batch-paged-history");
    await pager.getByRole("button", { name: "Newer" }).click();
    await until("back to the newest", async () => (await seqs())[0] === 61);
  });
});
