/**
 * Whether this process can reach PostgreSQL, as its background work sees it.
 *
 * When a job, the relay or the reconciler hits a connection error, the process is marked
 * down: the workers stop taking jobs (`onDown`) and a probe runs until the database answers
 * again, then they resume (`onUp`). Meanwhile a job that has work to save waits (`whenUp`)
 * and saves it then, instead of failing: a database outage must neither burn a job's
 * attempts nor pay the provider twice for an answer that could not be recorded.
 */
import { isConnectionError } from "../errors";
import type { Logger } from "../logger";

export interface AvailabilityDeps {
  /** Resolves when the database answers. */
  probe(): Promise<unknown>;
  logger: Logger;
  /** How often the probe runs while down (default 500 ms). */
  probeIntervalMs?: number;
  onDown?(): void;
  onUp?(): void;
}

export function createAvailability({ probe, logger, probeIntervalMs = 500, onDown, onUp }: AvailabilityDeps) {
  let outage: { since: number; back: Promise<void>; end(): void } | null = null;
  let closed = false;
  let timer: NodeJS.Timeout | null = null;

  function markDown(err: unknown) {
    if (outage || closed) return;
    let resolveBack!: () => void;
    outage = { since: Date.now(), back: new Promise<void>((r) => (resolveBack = r)), end: () => resolveBack() };
    logger.warn({ err }, "PostgreSQL is unreachable: pausing workers until it answers");
    onDown?.();
    const tick = () => {
      probe().then(
        () => {
          logger.info({ downMs: Date.now() - (outage?.since ?? Date.now()) }, "PostgreSQL answers again: resuming workers");
          outage = null;
          timer = null;
          onUp?.();
          resolveBack();
        },
        () => {
          if (!closed) timer = setTimeout(tick, probeIntervalMs);
        },
      );
    };
    timer = setTimeout(tick, probeIntervalMs);
  }

  /** True (and the process marked down) when `err` is a lost database connection. */
  function noticed(err: unknown): boolean {
    if (!isConnectionError(err)) return false;
    markDown(err);
    return true;
  }

  /**
   * Runs `step`, and while it fails because the database cannot be reached, waits for the
   * database and runs it again. Any other error is thrown as it is. Steps must be safe to
   * repeat (every report is: a duplicate is recorded as ignored, never counted twice).
   */
  async function untilSaved<T>(step: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await step();
      } catch (err) {
        if (closed || !noticed(err)) throw err;
        await outage?.back;
      }
    }
  }

  return {
    noticed,
    untilSaved,
    isDown: () => outage !== null,
    /** Stops probing; steps still waiting give up with the error that stopped them. */
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      outage?.end();
    },
  };
}

export type Availability = ReturnType<typeof createAvailability>;
