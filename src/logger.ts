/** Structured logging. Library code logs through a child of this logger, never the console. */
import pino, { type Logger } from "pino";

export type { Logger };

export function createLogger(level: string = process.env.LOG_LEVEL ?? "info"): Logger {
  return pino({ level, base: { service: "tranche" } });
}
