/** Structured logging. Library code logs through a child of this logger, never the console. */
import pino, { type Logger } from "pino";
import pretty from "pino-pretty";

export type { Logger };

export interface LoggerOptions {
  /** Human-readable lines (pino-pretty) instead of JSON; see `wantsPrettyLogs`. */
  pretty?: boolean;
}

export function createLogger(level: string = process.env.LOG_LEVEL ?? "info", options: LoggerOptions = {}): Logger {
  const base = { level, base: { service: "tranche" } };
  // In the main thread, not as a pino transport: no worker thread to start or to flush at exit.
  return options.pretty ? pino(base, pretty({ colorize: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname,service" })) : pino(base);
}

/** Pretty logs for a person at a terminal; JSON for production and for anything that reads the output. */
export function wantsPrettyLogs(nodeEnv: string, stdoutIsTTY = process.stdout.isTTY === true): boolean {
  return stdoutIsTTY && nodeEnv !== "production";
}
