// A provider answer that cannot be reported is never paid for twice: PostgreSQL refuses every TASK_COMPLETED report for a while (a trigger raising an error that is not a lost connection), longer than the worker's own tries of a report, so some jobs are run again by BullMQ. Every task still completes with exactly one provider request, its held answer reported by the later run.
import { act, documentOf, uploadBatch } from "./support/e2e";
import { expectBatchInvariants } from "./support/invariants";
import { createSystem, waitForStatus, type TestSystem } from "./support/system";

const N = 6;
const REFUSED_FOR_MS = 7_000;
let s: TestSystem;

beforeAll(async () => {
  s = await createSystem();
  // nextval is not rolled back with the failed INSERT, so the count of refusals survives them.
  await s.db.prisma.$executeRawUnsafe(`CREATE TABLE fault_window (until timestamptz NOT NULL)`);
  await s.db.prisma.$executeRawUnsafe(`CREATE SEQUENCE fault_refusals`);
  await s.db.prisma.$executeRawUnsafe(`
    CREATE FUNCTION refuse_completions() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.kind = 'TASK_COMPLETED' AND clock_timestamp() < (SELECT max(until) FROM fault_window) THEN
        PERFORM nextval('fault_refusals');
        RAISE EXCEPTION 'injected fault: reports refused';
      END IF;
      RETURN NEW;
    END $$`);
  await s.db.prisma.$executeRawUnsafe(`CREATE TRIGGER refuse_completions BEFORE INSERT ON inbox FOR EACH ROW EXECUTE FUNCTION refuse_completions()`);
}, 60_000);
afterAll(() => s?.close());

test("a report that fails after the answer is retried, never the provider call", async () => {
  const id = await uploadBatch(s, { texts: N });
  await act(s, id, "stage");
  await waitForStatus(s, id, "STAGED", 60_000);
  await s.db.prisma.$executeRawUnsafe(`INSERT INTO fault_window VALUES (clock_timestamp() + interval '${REFUSED_FOR_MS} milliseconds')`);
  await act(s, id, "run");
  await waitForStatus(s, id, "COMPLETED", 90_000);

  const [row] = await s.db.prisma.$queryRawUnsafe<{ refusals: bigint }[]>(`SELECT last_value AS refusals FROM fault_refusals`);
  expect(Number(row?.refusals)).toBeGreaterThan(N);
  const b = await s.db.prisma.batch.findUniqueOrThrow({ where: { id } });
  expect(b).toMatchObject({ total: N, succeeded: N, failed: 0 });
  await expectBatchInvariants(s.db.prisma, id);

  const calls = new Map<string, number>();
  for (const r of s.fake.requests) calls.set(documentOf(r.body), (calls.get(documentOf(r.body)) ?? 0) + 1);
  expect(calls.size).toBe(N);
  expect(Object.fromEntries(calls)).toEqual(Object.fromEntries([...calls.keys()].map((k) => [k, 1])));
  // The refusals outlasted the worker's own tries: at least one job was run again and reported what it held.
  const completed = await s.background.queues.analysis.getCompleted();
  expect(completed.some((j) => j.returnvalue === "reported (held outcome)")).toBe(true);
}, 120_000);
