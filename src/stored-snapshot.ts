/**
 * Reading a batch's stored snapshot: upgraded to this machine's version on the way in
 * (see `machines/batch.versions.ts`), or refused with `incompatible_snapshot` when a newer
 * machine wrote it. Every place that restores a stored snapshot goes through here.
 */
import { IncompatibleSnapshotError } from "./errors";
import { MACHINE_VERSION } from "./machines/batch.machine";
import { restore, type BatchSnapshot, type StoredSnapshot } from "./machines/batch.transition";
import { upgradeSnapshot } from "./machines/batch.versions";

/** What an upgrade on load did, for the history entry that records it. */
export interface SnapshotUpgradeRecord {
  from: number;
  to: number;
  steps: string[];
}

export interface LoadedSnapshot {
  snapshot: BatchSnapshot;
  /** Set when the stored snapshot was older than this machine. */
  upgrade: SnapshotUpgradeRecord | null;
}

export function loadSnapshot(batchId: string, stored: StoredSnapshot, machineVersion: number): LoadedSnapshot {
  const result = upgradeSnapshot(stored, machineVersion);
  if (!result.ok) throw new IncompatibleSnapshotError(batchId, result.reason, machineVersion, MACHINE_VERSION);
  const upgrade = result.steps.length ? { from: result.from, to: result.to, steps: result.steps } : null;
  return { snapshot: restore(result.snapshot), upgrade };
}
