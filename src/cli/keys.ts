/**
 * `npm run keys -- <command>`: API keys from the shell, against DATABASE_URL.
 *
 *   create --role viewer|operator|admin --name <name> [--tenant <tenant>]   prints the new key once
 *   list                                                                    every key, without secrets
 *   revoke <id>                                                             effective at once in every process
 *
 * Exit codes: 0 done, 1 failed (e.g. no such key), 2 bad usage.
 */
import { parseArgs } from "node:util";
import { createKeyStore } from "../auth/api-keys";
import { createKeySchema } from "../server/access-routes";
import { loadConfig } from "../config";
import { createPrisma, ensureDatabase, migrate } from "../db";

const USAGE = `usage: npm run keys -- create --role viewer|operator|admin --name <name> [--tenant <tenant>]
       npm run keys -- list
       npm run keys -- revoke <id>
`;

function usage(problem: string): never {
  process.stderr.write(`${problem}\n${USAGE}`);
  process.exit(2);
}

async function run(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { role: { type: "string" }, name: { type: "string" }, tenant: { type: "string" }, json: { type: "boolean" } },
  });
  const [command, ...rest] = positionals;
  if (!command) usage("a command is needed");
  const config = loadConfig();
  await ensureDatabase(config.DATABASE_URL);
  await migrate(config.DATABASE_URL);
  const prisma = createPrisma(config.DATABASE_URL, 2);
  const keys = createKeyStore({ prisma });
  try {
    switch (command) {
      case "create": {
        const parsed = createKeySchema.safeParse({ name: values.name, role: values.role, tenant: values.tenant });
        if (!parsed.success) usage(parsed.error.issues.map((i) => `--${i.path.join(".")}: ${i.message}`).join("\n"));
        const key = await keys.create(parsed.data);
        if (values.json) process.stdout.write(`${JSON.stringify(key)}\n`);
        else {
          process.stdout.write(`created key ${key.id} "${key.name}" (role ${key.role}, tenant ${key.tenant})\n`);
          process.stdout.write(`${key.key}\n`);
          process.stderr.write("This is the only time the key is shown: keep it now.\n");
        }
        return 0;
      }
      case "list": {
        const all = await keys.list();
        if (values.json) process.stdout.write(`${JSON.stringify(all)}\n`);
        else {
          if (!all.length) process.stdout.write("no keys\n");
          for (const k of all) {
            process.stdout.write(`${k.id}  ${k.role.padEnd(8)}  ${k.tenant.padEnd(16)}  ${k.name}  ${k.revoked_at ? `revoked ${k.revoked_at}` : `created ${k.created_at}`}\n`);
          }
        }
        return 0;
      }
      case "revoke": {
        const [id] = rest;
        if (!id) usage("revoke needs a key id (see `npm run keys -- list`)");
        const revoked = await keys.revoke(id);
        if (!revoked) {
          process.stderr.write(`no key ${id}\n`);
          return 1;
        }
        process.stdout.write(`revoked key ${revoked.id} "${revoked.name}"\n`);
        return 0;
      }
      default:
        usage(`unknown command "${command}"`);
    }
  } finally {
    await prisma.$disconnect();
  }
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
