// The batch queue across tenants: when running slots are scarce they go round-robin (one tenant's long queue does not starve another's), MAX_RUNNING_BATCHES_PER_TENANT caps one tenant's running batches, and with one tenant the queue keeps its plain order.
import type { Driver } from "./support/drive";
import { finishTasks, stageAll } from "./support/drive";
import { createHarness, type Harness } from "./support/harness";

const harnesses: Harness[] = [];
afterAll(() => Promise.all(harnesses.map((h) => h.close())));

async function setup(maxRunningBatches: number, maxRunningBatchesPerTenant?: number) {
  const h = await createHarness({ maxRunningBatches, maxRunningBatchesPerTenant });
  harnesses.push(h);
  const d: Driver = { service: h.engine.service, prisma: h.db.prisma };
  /** A staged batch of `tenant`. */
  const staged = async (tenant: string, name: string) => {
    const id = await d.service.createBatch({
      name,
      analysis: { instructions: "Summarise." },
      priority: 0,
      window: 4,
      stagingTolerance: 0,
      failureTolerance: 0,
      documents: [{ name: "a.txt", mimeType: "text/plain", content: Buffer.from("Some text.") }],
      tenant,
    });
    await d.service.requestStateChange(id, "stage");
    await stageAll(d, id);
    return id;
  };
  const run = (id: string) => d.service.requestStateChange(id, "run");
  const running = async () =>
    (await h.db.prisma.batch.findMany({ where: { status: "ANALYZING", substate: "running" }, select: { name: true }, orderBy: { name: "asc" } })).map((b) => b.name);
  return { h, d, staged, run, running };
}

test("one slot: after a batch of the busy tenant, the other tenant's batch goes next, though it queued last", async () => {
  const { d, staged, run, running } = await setup(1);
  const ids: Record<string, string> = {};
  for (const [tenant, name] of [["acme", "acme-1"], ["acme", "acme-2"], ["acme", "acme-3"], ["globex", "globex-1"]] as const) ids[name] = await staged(tenant, name);
  for (const name of ["acme-1", "acme-2", "acme-3", "globex-1"]) await run(ids[name]!);
  expect(await running()).toEqual(["acme-1"]);

  const order = ["acme-1"];
  for (let i = 0; i < 3; i++) {
    await finishTasks(d, ids[order[order.length - 1]!]!);
    const now = await running();
    expect(now).toHaveLength(1);
    order.push(now[0]!);
  }
  expect(order).toEqual(["acme-1", "globex-1", "acme-2", "acme-3"]);
});

test("MAX_RUNNING_BATCHES_PER_TENANT keeps a free slot for another tenant", async () => {
  const { staged, run, running, h } = await setup(2, 1);
  const a1 = await staged("acme", "acme-1");
  const a2 = await staged("acme", "acme-2");
  const b1 = await staged("globex", "globex-1");
  await run(a1);
  await run(a2);
  expect(await running()).toEqual(["acme-1"]);
  const waiting = await h.db.prisma.batch.findUniqueOrThrow({ where: { id: a2 } });
  expect([waiting.substate, waiting.queuePosition]).toEqual(["queued", 1]);
  await run(b1);
  expect(await running()).toEqual(["acme-1", "globex-1"]);
});

test("with a single tenant the queue keeps its order", async () => {
  const { d, staged, run, running } = await setup(1);
  const ids = [await staged("default", "b-1"), await staged("default", "b-2"), await staged("default", "b-3")];
  for (const id of ids) await run(id);
  const order: string[] = [];
  for (let i = 0; i < 3; i++) {
    const now = await running();
    order.push(now[0]!);
    await finishTasks(d, ids[i]!);
  }
  expect(order).toEqual(["b-1", "b-2", "b-3"]);
});
