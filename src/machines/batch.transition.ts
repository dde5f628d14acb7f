/**
 * The pure API over the batch machine: what the batch service needs to decide a change
 * without running an actor. Snapshots are plain JSON, so what is stored in PostgreSQL is
 * exactly what these functions read and return.
 */
import { initialTransition, transition, type SnapshotFrom } from "xstate";
import { ACTIONS, type Action, type MachineEvent } from "./batch.events";
import { batchMachine, type BatchContext, type BatchInput, type Effect } from "./batch.machine";

export type BatchSnapshot = SnapshotFrom<typeof batchMachine>;
/** A snapshot as stored: the JSON form of a `BatchSnapshot`. */
export type StoredSnapshot = Record<string, unknown>;

export type BatchStatus =
  | "SAVED"
  | "STAGING"
  | "STAGED"
  | "ANALYZING"
  | "PAUSED"
  | "COMPLETED"
  | "FAILED"
  | "FAILED_STAGING"
  | "CANCELLED"
  | "DELETED";
export type Substate = "queued" | "running" | null;

export function toStored(snapshot: BatchSnapshot): StoredSnapshot {
  return JSON.parse(JSON.stringify(snapshot)) as StoredSnapshot;
}

export function restore(stored: StoredSnapshot): BatchSnapshot {
  return batchMachine.resolveState(stored as unknown as Parameters<typeof batchMachine.resolveState>[0]);
}

/** The snapshot of a new batch. */
export function initialSnapshot(input: BatchInput): BatchSnapshot {
  return initialTransition(batchMachine, input)[0];
}

export interface Decision {
  accepted: boolean;
  snapshot: BatchSnapshot;
  effects: Effect[];
}

/**
 * Applies one event. A refused event (no enabled transition in the current state) leaves
 * the snapshot as it was and yields no effects.
 */
export function decide(snapshot: BatchSnapshot, event: MachineEvent): Decision {
  if (!snapshot.can(event)) return { accepted: false, snapshot, effects: [] };
  const [next, actions] = transition(batchMachine, snapshot, event);
  const effects = (actions as ReadonlyArray<{ type: string; params?: unknown }>)
    .filter((a) => a.type === "xstate.emit")
    .map((a) => (a.params as { event: Effect }).event);
  return { accepted: true, snapshot: next, effects };
}

export function stateOf(snapshot: BatchSnapshot): { status: BatchStatus; substate: Substate } {
  const value = snapshot.value;
  if (typeof value === "string") return { status: value as BatchStatus, substate: null };
  const [status, substate] = Object.entries(value)[0] as [BatchStatus, Substate];
  return { status, substate };
}

/** The user actions the machine accepts right now; never a hand-kept list. */
export function allowedActions(snapshot: BatchSnapshot): Action[] {
  return ACTIONS.filter((type) => snapshot.can({ type }));
}

export function contextOf(snapshot: BatchSnapshot): BatchContext {
  return snapshot.context;
}

/** A readable name for a state, e.g. `ANALYZING.running`, as written in history. */
export function stateName(snapshot: BatchSnapshot): string {
  const { status, substate } = stateOf(snapshot);
  return substate ? `${status}.${substate}` : status;
}
