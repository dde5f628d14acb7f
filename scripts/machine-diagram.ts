/**
 * `npm run machine:diagram`: prints the batch machine as a Mermaid stateDiagram-v2, drawn from
 * the machine itself. Inputs: none. Output: the diagram on stdout, the text of the README's
 * "The batch machine" block (tests/machine-diagram.test.ts fails when they differ). Exit 0.
 */
import { toMermaid } from "../src/machines/batch.diagram";

process.stdout.write(toMermaid());
