/**
 * The pure API over the batch machine: what the batch service needs to decide a change
 * without running an actor. Snapshots are plain JSON, so what is stored in PostgreSQL is
 * exactly what these functions read and return.
 */
import { createActor, initialTransition, type AnyActorScope, type SnapshotFrom } from "xstate";
import { ACTIONS, type Action, type MachineEvent } from "./batch.events";
import type { BatchStatus, StateRef, Substate } from "../vocabulary";
import { batchMachine, type BatchContext, type BatchInput, type Effect } from "./batch.machine";

export type BatchSnapshot = SnapshotFrom<typeof batchMachine>;
/** A snapshot as stored: the JSON form of a `BatchSnapshot`. */
export type StoredSnapshot = Record<string, unknown>;

export type { BatchStatus, Substate };

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
 * One actor scope for every `decide()`: xstate's own `transition()` builds a fresh one per
 * call (an actor and a system, ~5x the cost of the transition itself). Reusing it relies on
 * xstate 5.33's `machine.transition(snapshot, event, scope)` taking the scope as its only
 * side channel, which is why package.json pins xstate to that minor version. The machine
 * spawns no children, so the shared system never holds anything between calls.
 */
const scope = (() => {
  const self = createActor(batchMachine, { input: { documents: 0, window: 1, stagingTolerance: 0, failureTolerance: 0 } });
  const collected: { type: string; params?: unknown }[] = [];
  const actorScope = {
    self,
    defer: () => {},
    id: "",
    logger: () => {},
    sessionId: "",
    stopChild: () => {},
    system: self.system,
    emit: () => {},
    actionExecutor: (action: { type: string; params?: unknown }) => {
      collected.push(action);
    },
  } as unknown as AnyActorScope;
  return { actorScope, collected };
})();

/**
 * Applies one event. A refused event (no enabled transition in the current state) leaves
 * the snapshot as it was and yields no effects.
 */
export function decide(snapshot: BatchSnapshot, event: MachineEvent): Decision {
  if (!snapshot.can(event)) return { accepted: false, snapshot, effects: [] };
  scope.collected.length = 0;
  const next = batchMachine.transition(snapshot, event, scope.actorScope) as BatchSnapshot;
  const effects: Effect[] = [];
  for (const a of scope.collected) if (a.type === "xstate.emit") effects.push((a.params as { event: Effect }).event);
  scope.collected.length = 0;
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
export function stateName(snapshot: BatchSnapshot): StateRef {
  const { status, substate } = stateOf(snapshot);
  return substate ? `${status}.${substate}` : status;
}
