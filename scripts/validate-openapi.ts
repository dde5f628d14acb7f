/**
 * `npm run openapi:validate`: builds the OpenAPI document from the zod schemas and checks it
 * against the official OpenAPI 3.1 JSON Schema (@seriousme/openapi-schema-validator), $refs
 * included. Prints `valid OpenAPI 3.1` and exits 0, or prints every problem and exits 1.
 * With `--print`, writes the document to stdout instead of the verdict; with a file name,
 * checks that file instead of the generated document.
 */
import { readFileSync } from "node:fs";
import { buildOpenApiDocument } from "../src/server/openapi";

async function main() {
  const { Validator } = await import("@seriousme/openapi-schema-validator");
  const file = process.argv.slice(2).find((a) => !a.startsWith("--"));
  const document = file ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : buildOpenApiDocument("0.0.0");
  const validator = new Validator();
  const result = await validator.validate(document);
  if (process.argv.includes("--print")) {
    process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  } else if (result.valid) {
    console.log(`valid OpenAPI ${validator.version}`);
  }
  if (!result.valid) {
    console.error(JSON.stringify(result.errors, null, 2));
    process.exit(1);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
