/**
 * The one place an analysis's `output_schema` is compiled, shared by the API (which checks
 * the schema when a batch is created) and the analysis worker (which validates model output
 * with it), so a schema the API accepts is one the worker can compile.
 *
 * Schemas come from users, so: patterns run on RE2 (re2js, linear time — `^(a+)+$` cannot
 * hang the validator; backreferences and lookarounds are refused), `$ref` may only point inside
 * the schema (no remote loading), and size and nesting are bounded.
 */
import Ajv, { type ValidateFunction } from "ajv";
import type { RegExpEngine } from "ajv/dist/types";
import { RE2JS } from "re2js";

/** Largest `output_schema`, as JSON, in bytes. */
export const MAX_OUTPUT_SCHEMA_BYTES = 64 * 1024;
/** Deepest nesting of objects and arrays in an `output_schema`. */
export const MAX_OUTPUT_SCHEMA_DEPTH = 32;

const re2: RegExpEngine = Object.assign((pattern: string) => RE2JS.compile(pattern), { code: "re2js" });

/** A fresh Ajv as both sides use it: not strict, no console logger, RE2 for every pattern. */
export function createOutputAjv(): Ajv {
  return new Ajv({ allErrors: true, strict: false, logger: false, code: { regExp: re2 } });
}

const REF_KEYWORDS = new Set(["$ref", "$dynamicRef", "$recursiveRef"]);

/** Size, depth and reference problems, found without recursion; empty when there are none. */
function shapeProblems(schema: unknown): string[] {
  const bytes = Buffer.byteLength(JSON.stringify(schema) ?? "");
  if (bytes > MAX_OUTPUT_SCHEMA_BYTES) return [`is ${bytes} bytes; the limit is ${MAX_OUTPUT_SCHEMA_BYTES}`];
  const problems: string[] = [];
  const stack: { value: unknown; path: string; depth: number }[] = [{ value: schema, path: "", depth: 1 }];
  while (stack.length) {
    const { value, path, depth } = stack.pop()!;
    if (value === null || typeof value !== "object") continue;
    if (depth > MAX_OUTPUT_SCHEMA_DEPTH) return [`nests deeper than ${MAX_OUTPUT_SCHEMA_DEPTH} levels (at ${path || "/"})`];
    for (const [key, child] of Object.entries(value)) {
      // An object under "$ref" is a property of that name (inside "properties"), not a reference.
      if (REF_KEYWORDS.has(key) && typeof child === "string" && !child.startsWith("#")) {
        problems.push(`${path}/${key}: only references inside the schema ("#…") are allowed, not ${JSON.stringify(child)}`);
      }
      stack.push({ value: child, path: `${path}/${key}`, depth: depth + 1 });
    }
  }
  return problems;
}

/**
 * Why this schema cannot be used as an analysis's output schema (empty: it can). Compiles it
 * exactly as the worker will, so an unknown `$ref`, an invalid keyword value or a pattern RE2
 * cannot run is found here, not in every task.
 */
export function outputSchemaProblems(schema: unknown): string[] {
  const shape = shapeProblems(schema);
  if (shape.length) return shape;
  const ajv = createOutputAjv();
  if (ajv.validateSchema(schema as Record<string, unknown>) !== true) return [`is not a valid JSON Schema: ${ajv.errorsText(ajv.errors, { dataVar: "schema" })}`];
  try {
    ajv.compile(schema as Record<string, unknown>);
    return [];
  } catch (err) {
    return [`cannot be compiled: ${err instanceof Error ? err.message : String(err)}`];
  }
}

/** Compiles a schema already checked by `outputSchemaProblems`; throws what Ajv throws. */
export function compileOutputSchema(schema: Record<string, unknown>): ValidateFunction {
  return createOutputAjv().compile(schema);
}
