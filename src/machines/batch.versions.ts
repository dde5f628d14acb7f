/**
 * Machine versions: how a snapshot stored by an older batch machine is read by this one.
 *
 * Every change to the machine that could make an old snapshot mean something else bumps
 * `MACHINE_VERSION` and adds one migration here, from the version before to the new one.
 * A snapshot is upgraded on load by running every migration from its stored version up to
 * the current one, in order; one from a version this code does not know (a newer install
 * wrote it) is refused, never guessed at. Pure: plain JSON in, plain JSON out.
 */
import { MACHINE_VERSION } from "./batch.machine";

/** A snapshot as stored: the JSON form of the machine's persisted snapshot. */
type Stored = Record<string, unknown>;

export interface SnapshotMigration {
  /** The version it reads; it writes `from + 1`. */
  from: number;
  /** What changed, as recorded in the batch's history when the upgrade runs. */
  description: string;
  up(snapshot: Stored): Stored;
}

export const SNAPSHOT_MIGRATIONS: readonly SnapshotMigration[] = [
  {
    from: 1,
    description: "one dispatch window for both kinds of work becomes one window per kind (context.windows)",
    up(snapshot) {
      const context = { ...(snapshot.context as Record<string, unknown>) };
      const window = context.window as number;
      delete context.window;
      return { ...snapshot, context: { ...context, windows: { staging: window, analysis: window } } };
    },
  },
  {
    from: 2,
    description:
      "the batch keeps its usage, its budget (none) and what running tasks hold of it, and why it is paused (context.usage, context.budget, context.pauseReason); usage counts from the upgrade on",
    up(snapshot) {
      const context = snapshot.context as Record<string, unknown>;
      const paused = snapshot.value === "PAUSED";
      return {
        ...snapshot,
        context: {
          ...context,
          usage: { requests: 0, inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, costUsd: 0, unpriced: 0 },
          budget: { limitUsd: null, reservedUsd: 0 },
          pauseReason: paused ? "user" : null,
        },
      };
    },
  },
];

export type SnapshotUpgrade =
  | { ok: true; snapshot: Stored; from: number; to: number; steps: string[] }
  | { ok: false; from: number; to: number; reason: string };

/**
 * Brings a stored snapshot up to `target` (default: this machine's version). Returns the
 * snapshot unchanged (and no steps) when it is current, and `ok: false` when it cannot be
 * read: stored by a newer machine, or by a version no migration chain reaches.
 */
export function upgradeSnapshot(
  snapshot: Stored,
  storedVersion: number,
  target: number = MACHINE_VERSION,
  migrations: readonly SnapshotMigration[] = SNAPSHOT_MIGRATIONS,
): SnapshotUpgrade {
  if (!Number.isInteger(storedVersion) || storedVersion < 1) {
    return { ok: false, from: storedVersion, to: target, reason: `machine version ${storedVersion} is not a version` };
  }
  if (storedVersion > target) {
    return {
      ok: false,
      from: storedVersion,
      to: target,
      reason: `the snapshot was stored by machine version ${storedVersion}; this install runs version ${target} and cannot read it`,
    };
  }
  let current = snapshot;
  const steps: string[] = [];
  for (let v = storedVersion; v < target; v++) {
    const migration = migrations.find((m) => m.from === v);
    if (!migration) {
      return { ok: false, from: storedVersion, to: target, reason: `no migration from machine version ${v} to ${v + 1}` };
    }
    current = migration.up(current);
    steps.push(`v${v} → v${v + 1}: ${migration.description}`);
  }
  return { ok: true, snapshot: current, from: storedVersion, to: target, steps };
}
