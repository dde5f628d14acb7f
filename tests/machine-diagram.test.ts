// The machine diagram is drawn from the machine: every state and every user action of `batchMachine` (found by walking it) is in it, and the README shows exactly what `npm run machine:diagram` prints.
import { readFileSync } from "node:fs";
import path from "node:path";
import type { AnyStateNode } from "xstate";
import { toMermaid } from "../src/machines/batch.diagram";
import { batchMachine } from "../src/machines/batch.machine";

function nodesBelow(node: AnyStateNode): AnyStateNode[] {
  return Object.values(node.states).flatMap((child) => [child, ...nodesBelow(child)]);
}

const drawn = nodesBelow(batchMachine.root).filter((n) => n.type !== "final");
const idOf = (n: AnyStateNode) => (n.type === "final" ? "[*]" : n.path.join("_"));

/** Every user action (lower-case event) with a target, as [source, action, target]. */
const userTransitions = nodesBelow(batchMachine.root).flatMap((node) =>
  [...node.transitions].flatMap(([event, transitions]) =>
    /^[a-z]/.test(event) ? transitions.flatMap((t) => (t.target ?? []).map((target) => [node, event, target] as const)) : [],
  ),
);

/** The diagram's edges: `from --> to: label`, with the label's events (guards dropped). */
function edges(diagram: string) {
  return [...diagram.matchAll(/^\s*(\S+) --> (\S+)(?:: (.*))?$/gm)].map(([, from, to, label]) => ({
    from,
    to,
    events: (label ?? "").split(", ").map((part) => part.split(" ")[0]).filter((e) => e && !e.startsWith("[")),
  }));
}

describe("the diagram drawn from the machine", () => {
  const diagram = toMermaid();

  test("is a Mermaid state diagram starting in the machine's initial state", () => {
    expect(diagram.startsWith("stateDiagram-v2\n")).toBe(true);
    expect(diagram).toContain(`[*] --> ${batchMachine.root.initial?.target.map(idOf)[0]}`);
  });

  test("has every state of the machine, nested ones inside their parent", () => {
    expect(drawn.length).toBeGreaterThan(8);
    for (const node of drawn) {
      expect(diagram).toMatch(new RegExp(`(^|\\s)${idOf(node)}(\\s|:|$)`, "m"));
      if (node.parent && node.parent !== batchMachine.root) {
        expect(diagram).toContain(`state "${node.key}" as ${idOf(node)}`);
        expect(diagram).toContain(`state ${idOf(node.parent)} {`);
      }
    }
  });

  test("has every user action of the machine, on the edge from its state to its target", () => {
    const actions = new Set(userTransitions.map(([, event]) => event));
    expect(actions.size).toBeGreaterThan(5);
    const drawnEdges = edges(diagram);
    for (const [source, action, target] of userTransitions) {
      const edge = drawnEdges.find((e) => e.from === idOf(source) && e.to === idOf(target) && e.events.includes(action));
      expect({ source: source.id, action, target: target.id, drawn: Boolean(edge) }).toEqual({ source: source.id, action, target: target.id, drawn: true });
    }
  });

  test("labels guarded and automatic transitions with their guard", () => {
    for (const node of drawn) {
      for (const t of node.always ?? []) {
        expect(diagram).toMatch(new RegExp(`^\\s*${idOf(node)} --> ${t.target?.map(idOf)[0]?.replace(/[[*\]]/g, "\\$&")}: .*\\[${String(t.guard)}\\]`, "m"));
      }
    }
  });

  test("leaves out the final state and transitions that keep a batch where it is", () => {
    expect(diagram).not.toContain("DELETED");
    expect(diagram).not.toMatch(/TASK_COMPLETED|DOCUMENT_STAGED|JOBS_WITHDRAWN|DOCUMENTS_ADDED/);
  });

  test("marks a batch's current state, its visited states and where its allowed actions lead", () => {
    const marked = toMermaid({ highlight: "ANALYZING.running", allowed: ["pause", "cancel"], path: ["SAVED", "STAGING", "ANALYZING.running"] });
    expect(marked.startsWith(diagram.trimEnd())).toBe(true);
    expect(marked).toMatch(/^\s*class ANALYZING_running current$/m);
    expect(marked).toMatch(/^\s*class SAVED,STAGING visited$/m);
    expect(marked).toMatch(/^\s*class PAUSED,CANCELLED next$/m);
  });
});

test("the README's diagram is exactly what `npm run machine:diagram` prints (run it and paste the output when this fails)", () => {
  const readme = readFileSync(path.join(__dirname, "..", "README.md"), "utf8");
  const block = /## The batch machine\s+```mermaid\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(block).toBeDefined();
  expect(block).toBe(toMermaid());
});
