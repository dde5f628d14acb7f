/**
 * Prints the SQL that creates the database described by prisma/schema.prisma, using
 * Prisma's own schema engine (the wasm build: the native engine cannot be downloaded on
 * our machines). Used to write migrations and by the drift test.
 *
 *   npm run db:schema-sql > /tmp/full.sql
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { PrismaPg } from "@prisma/adapter-pg";
import { bindMigrationAwareSqlAdapterFactory } from "@prisma/driver-adapter-utils";

const SCHEMA_PATH = path.join(__dirname, "..", "prisma", "schema.prisma");

type WasmExports = Record<string, unknown>;
// Node has WebAssembly, but our tsconfig carries no DOM lib to type it.
const { WebAssembly } = globalThis as unknown as {
  WebAssembly: { instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: { exports: WasmExports } }> };
};

interface WasmModule {
  __wbg_set_wasm(exports: WasmExports): void;
  SchemaEngine: typeof import("@prisma/schema-engine-wasm").SchemaEngine;
}

async function loadEngineModule(): Promise<WasmModule> {
  // The package is built for bundlers (it imports the .wasm file as a module), so we
  // instantiate the wasm ourselves and hand it to the generated bindings.
  const bindings = (await import("@prisma/schema-engine-wasm/schema_engine_bg")) as unknown as WasmModule;
  const wasmPath = require.resolve("@prisma/schema-engine-wasm/schema_engine_bg").replace(/\.js$/, ".wasm");
  const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath), {
    "./schema_engine_bg.js": bindings,
  });
  bindings.__wbg_set_wasm(instance.exports);
  (instance.exports.__wbindgen_start as () => void)();
  return bindings;
}

/** The SQL script that takes an empty database to the given schema. */
export async function schemaSql(schema = readFileSync(SCHEMA_PATH, "utf8")): Promise<string> {
  const { SchemaEngine } = await loadEngineModule();
  // The engine opens a connection at start even for a diff that reads no database.
  const connectionString = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
  const adapter = bindMigrationAwareSqlAdapterFactory(new PrismaPg({ connectionString, allowExitOnIdle: true, idleTimeoutMillis: 100 }));
  const engine = await SchemaEngine.new({ datamodels: [["schema.prisma", schema]] }, () => undefined, adapter);
  try {
    const result = await engine.diff({
      from: { tag: "empty" },
      to: { tag: "schemaDatamodel", files: [{ path: "schema.prisma", content: schema }] },
      script: true,
      exitCode: null,
      filters: { externalTables: [], externalEnums: [] },
    });
    return result.stdout ?? "";
  } finally {
    engine.free();
  }
}

if (require.main === module) {
  schemaSql().then(
    (sql) => process.stdout.write(sql),
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    },
  );
}
