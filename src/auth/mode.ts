/**
 * The three ways Tranche runs: local (no ADMIN_API_KEY, loopback HOST: one user, no keys, as
 * a laptop needs), authenticated (ADMIN_API_KEY set), and open on purpose (AUTH=off, warned
 * about at every start). A non-loopback HOST with neither refuses to start.
 */
import { isIP } from "node:net";
import type { Config } from "../config";
import { ConfigError } from "../config";

export type AuthMode = { kind: "local" } | { kind: "keys"; adminKey: string } | { kind: "off"; warning: string };

/** Whether `host` only answers this machine: 127.0.0.0/8, ::1 or localhost. */
export function isLoopback(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, "");
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  return mapped ? (mapped[1] as string).startsWith("127.") : false;
}

/** Decides the mode, or throws a `ConfigError` saying why this configuration may not start. */
export function resolveAuthMode(config: Pick<Config, "HOST" | "ADMIN_API_KEY" | "AUTH">): AuthMode {
  if (config.AUTH === "off") {
    return {
      kind: "off",
      warning:
        `AUTH=off: authentication is disabled${isLoopback(config.HOST) ? "" : ` and Tranche listens on ${config.HOST}`}. ` +
        "Anyone who can reach the port can read every result, change or delete any batch and empty the queues. " +
        "Set ADMIN_API_KEY (at least 32 characters) to require API keys.",
    };
  }
  if (config.ADMIN_API_KEY) return { kind: "keys", adminKey: config.ADMIN_API_KEY };
  if (isLoopback(config.HOST)) return { kind: "local" };
  throw new ConfigError([
    `HOST=${config.HOST} is reachable from other machines, but no ADMIN_API_KEY is set, so anyone could use Tranche. ` +
      "Set ADMIN_API_KEY to a secret of at least 32 characters (e.g. `openssl rand -base64 32`) to require API keys, " +
      "or set AUTH=off to run without authentication on purpose.",
  ]);
}
