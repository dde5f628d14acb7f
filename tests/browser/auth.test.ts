// The web UI with API keys on, in a real browser: it asks for a key, refuses a wrong one, signs in, creates, stages and runs a batch whose progress arrives on the (cookie-authenticated) live stream, shows only its tenant's batches, opens the visualizer overlay of its own batch only, is refused the queue dashboard unless admin, and signs out.
import type { Browser, Locator, Page } from "playwright-core";
import { finishTasks, runningTasks, stageAll } from "../support/drive";
import { ADMIN_KEY } from "../support/auth";
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
const textOf = async (locator: Locator) => (await locator.first().innerText()).replace(/\s+/g, " ").trim();
async function untilText(what: string, locator: Locator, pattern: RegExp): Promise<void> {
  let seen = "";
  await until(what, async () => pattern.test((seen = await textOf(locator)))).catch((err: Error) => {
    throw new Error(`${err.message}: expected ${pattern}, saw "${seen}"`);
  });
}

describeInBrowser("the web UI with API keys", () => {
  let tranche: Tranche;
  let browser: Browser;
  let page: Page;
  let acmeKey = "";
  let globexBatch = "";
  let batchId = "";

  const row = (id: string) => page.locator(`tr[data-batch-id="${id}"]`);
  const state = (id: string) => row(id).locator('[data-testid="state"]');
  const button = (scope: Locator, name: string) => scope.getByRole("button", { name, exact: true });

  async function signIn(p: Page, key: string) {
    await p.locator('input[name="api-key"]').fill(key);
    await p.getByRole("button", { name: "Sign in" }).click();
  }

  beforeAll(async () => {
    tranche = await startTranche({ ADMIN_API_KEY: ADMIN_KEY, RATE_LIMIT_PER_MINUTE: "100000" });
    acmeKey = (await tranche.keys.create({ name: "alice", role: "operator", tenant: "acme" })).key;
    globexBatch = await tranche.driver.service.createBatch({
      name: "Globex secrets",
      analysis: { instructions: "Summarise." },
      priority: 0,
      window: 4,
      stagingTolerance: 0,
      failureTolerance: 0,
      documents: [{ name: "g.txt", mimeType: "text/plain", content: Buffer.from("Globex only.") }],
      tenant: "globex",
    });
    browser = await launchBrowser();
    // One context for the user's pages, so that the session cookie is shared as in one browser.
    page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await tranche?.close();
  });

  test("it asks for a key and refuses a wrong one", async () => {
    await page.goto(tranche.url);
    await untilText("the sign-in form", page.locator("form.sign-in"), /Sign in .*API key/);
    await signIn(page, "trk_0123456789abcdef_not-a-real-key-at-all-not-a-real-key-at-al");
    await untilText("the refusal", page.locator("form.sign-in .notice-error"), /not valid/);
    await screenshot(page, "sign-in");
  });

  test("signed in, it shows only the tenant's batches", async () => {
    await signIn(page, acmeKey);
    await untilText("who is signed in", page.locator('[data-testid="who"]'), /alice · operator · acme/);
    await untilText("the empty table", page.locator(".notice"), /No batches yet/);
    expect(await page.content()).not.toContain("Globex secrets");
  });

  test("it creates, stages and runs a batch, and progress arrives live", async () => {
    await page.getByRole("link", { name: "New batch" }).first().click();
    await page.locator('input[name="name"]').fill("Acme contracts");
    await page.locator('textarea[name="instructions"]').fill("List the parties.");
    await page.setInputFiles('[data-testid="file-input"]', [
      { name: "a.txt", mimeType: "text/plain", buffer: Buffer.from("Acme and Initech agree.") },
      { name: "b.txt", mimeType: "text/plain", buffer: Buffer.from("Acme leases the lab.") },
    ]);
    await page.getByRole("button", { name: "Create batch with 2 documents" }).click();
    await page.waitForURL(/\/batches\/[0-9a-f-]{36}$/);
    batchId = page.url().split("/").pop() ?? "";
    const stored = await tranche.driver.prisma.batch.findUniqueOrThrow({ where: { id: batchId } });
    expect(stored.tenant).toBe("acme");
    const created = await tranche.driver.prisma.historyEntry.findFirstOrThrow({ where: { batchId, eventType: "created" } });
    expect(created.actor).toMatch(/^alice \([0-9a-f]{16}\)$/);

    await page.getByRole("link", { name: "Batches" }).click();
    await untilText("the live stream, opened with the session cookie", page.locator(".live"), /^live$/);
    await untilText("the batch in the table", row(batchId), /Acme contracts/);
    expect(await page.locator("tr[data-batch-id]").count()).toBe(1);
    await button(row(batchId), "stage").click();
    await untilText("staging", state(batchId), /^STAGING$/);
    await stageAll(tranche.driver, batchId);
    await untilText("staged", state(batchId), /^STAGED$/);
    await button(row(batchId), "run").click();
    await untilText("running", state(batchId), /^ANALYZING running$/);
    const b = await tranche.driver.prisma.batch.findUniqueOrThrow({ where: { id: batchId } });
    const [task] = await runningTasks(tranche.driver.prisma, batchId);
    await tranche.driver.service.report({ type: "TASK_COMPLETED", batchId, runId: b.runId, taskId: task!.id, output: { parties: ["Acme"] }, inputTokens: 10, outputTokens: 5 });
    await untilText("one task done", row(batchId).locator('[data-testid="progress"]'), /1 succeeded/);
    await finishTasks(tranche.driver, batchId);
    await untilText("completed", state(batchId), /^COMPLETED$/);
    const history = await tranche.driver.prisma.historyEntry.findMany({ where: { batchId, eventType: { in: ["stage", "run"] } } });
    expect(history.map((h) => h.actor)).toEqual([created.actor, created.actor]);
    expect(await textOf(row(batchId).locator('[data-testid="tenant"]'))).toBe("· acme");
    await row(batchId).getByRole("link", { name: "Acme contracts" }).click();
    await untilText("the history names the key", page.locator('[data-testid="history"]'), new RegExp(`by user · key ${created.actor!.replace(/[()]/g, "\\$&")}`));
    await page.getByRole("link", { name: "Batches" }).click();
    await screenshot(page, "signed-in");
  });

  test("the visualizer draws its own batch, and another tenant's not at all", async () => {
    const own = await page.context().newPage();
    try {
      await own.goto(`${tranche.url}/machine?batch=${batchId}`);
      await untilText("the batch's standing", own.locator(".machine-batch"), /Acme contracts/);
      const other = await own.goto(`${tranche.url}/machine?batch=${globexBatch}`);
      expect(other?.status()).toBe(404);
      expect(await own.content()).not.toContain("Globex secrets");
    } finally {
      await own.close();
    }
  });

  test("the queue dashboard refuses a non-admin and opens for an admin", async () => {
    const dashboard = await page.context().newPage();
    try {
      const refused = await dashboard.goto(`${tranche.url}/admin/queues`);
      expect(refused?.status()).toBe(403);
      expect(await dashboard.innerText("body")).toMatch(/forbidden/);
    } finally {
      await dashboard.close();
    }
    const adminContext = await browser.newContext();
    try {
      const admin = await adminContext.newPage();
      await admin.goto(tranche.url);
      await signIn(admin, ADMIN_KEY);
      await untilText("the admin sees every tenant", admin.locator("table"), /Globex secrets.*|.*Acme contracts/);
      expect(await admin.locator("tr[data-batch-id]").count()).toBe(2);
      await admin.goto(`${tranche.url}/admin/queues`);
      await until("the dashboard's queues", async () => /staging/.test(await admin.innerText("body")) && /analysis/.test(await admin.innerText("body")));
      expect(await admin.title()).toMatch(/Tranche queues/);
    } finally {
      await adminContext.close();
    }
  });

  test("signing out forgets the key and the cookie", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await untilText("the sign-in form again", page.locator("form.sign-in"), /Signed out/);
    await page.reload();
    await untilText("still signed out after a reload", page.locator("form.sign-in"), /Sign in/);
    const cookies = await page.context().cookies();
    expect(cookies.find((c) => c.name === "tranche_key")).toBeUndefined();
    const res = await page.evaluate(async (url) => (await fetch(url)).status, `${tranche.url}/api/batches`);
    expect(res).toBe(401);
  });
});
