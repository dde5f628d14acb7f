/**
 * The batch machine drawn from its own definition: walks `batchMachine.root` and writes a
 * Mermaid `stateDiagram-v2`. Nothing here is a hand-kept copy of the machine, so the README
 * diagram, `npm run machine:diagram` and the `/machine` visualizer change when it changes.
 *
 * Drawn: every state but final ones (DELETED is never stored, so `delete` leads to Mermaid's
 * end `[*]`), compound states as composites, every transition that has a target, labelled
 * with its event (user actions are lower-case, worker and system events upper-case) and
 * `[guard]`, and `always` transitions labelled by their guard alone.
 *
 * Left out: transitions without a target (worker reports settled where the batch is, the
 * root-level handlers that record late reports in any state, documents added while SAVED).
 * They keep the batch in its state; as self-loops on nearly every state they would bury the
 * lifecycle the diagram is for.
 */
import type { AnyStateNode } from "xstate";
import { batchMachine } from "./batch.machine";

export interface DiagramOptions {
  /** The state to mark as current, as history writes it: `PAUSED`, `ANALYZING.running`. */
  highlight?: string;
  /** User actions allowed now: the states they lead to from `highlight` are marked as next. */
  allowed?: string[];
  /** States visited, in order (history's `to`); each is marked as visited. */
  path?: string[];
}

type Transition = AnyStateNode["always"] extends (infer T)[] | undefined ? T : never;

interface Edge {
  from: string;
  to: string;
  label: string;
}

const END = "[*]";
const INDENT = "  ";

/** Mermaid ids are global, so nested states are named by their path: `ANALYZING_running`. */
const nodeId = (node: AnyStateNode): string => (node.type === "final" ? END : node.path.join("_"));
const idOf = (name: string): string => name.split(".").join("_");

function guardName(t: Transition): string | undefined {
  const guard: unknown = t.guard;
  if (guard === undefined) return undefined;
  if (typeof guard === "string") return guard;
  if (typeof guard === "function") return guard.name || "guard";
  if (typeof guard === "object" && guard !== null && "type" in guard) return String(guard.type);
  return "guard";
}

function labelOf(event: string | undefined, t: Transition): string {
  const guard = guardName(t);
  return [event, guard && `[${guard}]`].filter(Boolean).join(" ");
}

function childrenOf(node: AnyStateNode): AnyStateNode[] {
  return Object.values(node.states).filter((child) => child.type !== "final");
}

/** Transitions leaving `node` itself (not its children), grouped by target in definition order. */
function edgesOf(node: AnyStateNode): Edge[] {
  const labelled: { to: string; label: string }[] = [];
  for (const [event, transitions] of node.transitions) {
    for (const t of transitions) {
      for (const target of t.target ?? []) labelled.push({ to: nodeId(target), label: labelOf(event, t) });
    }
  }
  for (const t of node.always ?? []) {
    for (const target of t.target ?? []) labelled.push({ to: nodeId(target), label: labelOf(undefined, t) });
  }
  const byTarget = new Map<string, string[]>();
  for (const { to, label } of labelled) byTarget.set(to, [...(byTarget.get(to) ?? []), label]);
  return [...byTarget].map(([to, labels]) => ({ from: nodeId(node), to, label: labels.join(", ") }));
}

function initialOf(node: AnyStateNode): string | undefined {
  const target = node.initial?.target[0];
  return target && nodeId(target);
}

/** Declarations of `node`'s children (composites with their insides), and every edge below it. */
function walk(node: AnyStateNode, depth: number, lines: string[], edges: Edge[]): void {
  const pad = INDENT.repeat(depth);
  const initial = initialOf(node);
  if (initial) lines.push(`${pad}${END} --> ${initial}`);
  for (const child of childrenOf(node)) {
    const id = nodeId(child);
    if (child.type === "compound" || child.type === "parallel") {
      lines.push(`${pad}state ${id} {`);
      walk(child, depth + 1, lines, edges);
      lines.push(`${pad}}`);
    } else if (depth > 1) {
      lines.push(`${pad}state "${child.key}" as ${id}`);
    }
    edges.push(...edgesOf(child));
  }
}

/** Marks as Mermaid classes: visited states, the states allowed actions lead to, and the current state last so it wins. */
function marks(options: DiagramOptions): string[] {
  const lines: string[] = [];
  const current = options.highlight && idOf(options.highlight);
  const visited = [...new Set((options.path ?? []).map(idOf))].filter((id) => id !== current);
  const next = current ? nextStates(options.highlight as string, options.allowed ?? []) : [];
  if (visited.length) lines.push(`${INDENT}classDef visited fill:#e0ecff,stroke:#3b6fd8`);
  if (next.length) lines.push(`${INDENT}classDef next stroke:#2f855a,stroke-width:2px,stroke-dasharray:4 3`);
  if (current) lines.push(`${INDENT}classDef current fill:#fde68a,stroke:#b45309,stroke-width:3px,font-weight:bold`);
  if (visited.length) lines.push(`${INDENT}class ${visited.join(",")} visited`);
  if (next.length) lines.push(`${INDENT}class ${next.join(",")} next`);
  if (current) lines.push(`${INDENT}class ${current} current`);
  return lines;
}

/** Where each allowed action goes from `state` (a transition of the state or of any state around it). */
function nextStates(state: string, allowed: string[]): string[] {
  const found = new Set<string>();
  let node: AnyStateNode | undefined = findNode(state);
  for (; node; node = node.parent) {
    for (const action of allowed) {
      for (const t of node.transitions.get(action) ?? []) {
        for (const target of t.target ?? []) if (target.type !== "final") found.add(nodeId(target));
      }
    }
  }
  return [...found];
}

function findNode(state: string): AnyStateNode | undefined {
  let node: AnyStateNode | undefined = batchMachine.root;
  for (const key of state.split(".")) node = node?.states[key];
  return node;
}

/** The batch machine as a Mermaid `stateDiagram-v2`, optionally marking where one batch stands and has been. */
export function toMermaid(options: DiagramOptions = {}): string {
  // Left to right: the lifecycle reads as a line, and the many edges back to SAVED and STAGING
  // (reset, restage, rerun) run above and below it instead of across it.
  const lines = ["stateDiagram-v2", `${INDENT}direction LR`];
  const edges: Edge[] = [];
  walk(batchMachine.root, 1, lines, edges);
  for (const e of edges) lines.push(`${INDENT}${e.from} --> ${e.to}: ${e.label}`);
  lines.push(...marks(options));
  return `${lines.join("\n")}\n`;
}
