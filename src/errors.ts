/**
 * The few errors Tranche answers with. Each has a stable string `code` (listed in the README)
 * and an HTTP status; the JSON error middleware turns them into responses.
 */
export class AppError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class ValidationError extends AppError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("validation_failed", 400, message, details);
  }
}

export class NotFoundError extends AppError {
  constructor(what: string, id: string) {
    super("not_found", 404, `${what} ${id} not found`, { id });
  }
}

/** Where a batch stands, as every refusal reports it. */
export interface BatchStanding {
  current_state: string;
  allowed_actions: string[];
  version: number;
}

/** The machine refused the action in the batch's current state. */
export class TransitionRefusedError extends AppError {
  constructor(message: string, readonly standing: BatchStanding) {
    super("transition_refused", 409, message, { ...standing });
  }
}

/** The client's `If-Match` / `expected_version` no longer matches the batch. */
export class VersionConflictError extends AppError {
  constructor(expected: number, readonly standing: BatchStanding) {
    super("version_conflict", 412, `Batch is at version ${standing.version}, not ${expected}`, { ...standing });
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(message: string) {
    super("payload_too_large", 413, message);
  }
}

/**
 * A batch's stored snapshot was written by a machine version this install cannot read (a
 * newer one): refused rather than misread. Nothing is written.
 */
export class IncompatibleSnapshotError extends AppError {
  constructor(batchId: string, reason: string, machineVersion: number, supportedVersion: number) {
    super("incompatible_snapshot", 409, `Batch ${batchId} cannot be read: ${reason}`, {
      machine_version: machineVersion,
      supported_machine_version: supportedVersion,
    });
  }
}

/** The request itself cannot be read: a malformed URL, body, multipart form or header. */
export class BadRequestError extends AppError {
  constructor(code: string, message: string, details: Record<string, unknown> = {}) {
    super(code, 400, message, details);
  }
}

/** A body in a type, charset or content encoding the API does not take. */
export class UnsupportedMediaTypeError extends AppError {
  constructor(code: "unsupported_media_type" | "unsupported_charset" | "unsupported_encoding", message: string) {
    super(code, 415, message);
  }
}

/** A request another site's page may have sent (foreign `Origin`), or one for a host this server is not. */
export class ForbiddenRequestError extends AppError {
  constructor(code: "cross_origin" | "host_not_allowed", message: string) {
    super(code, 403, message);
  }
}

/** No key, or one that is unknown or revoked: the three look the same to the caller. */
export class UnauthorizedError extends AppError {
  constructor(message = "A valid API key is needed: send Authorization: Bearer <key> or X-API-Key: <key>") {
    super("unauthorized", 401, message);
  }
}

/** The key is valid but its role may not do this. */
export class ForbiddenError extends AppError {
  constructor(role: string, needed: string) {
    super("forbidden", 403, `This needs the ${needed} role; the key's role is ${role}`, { role, needed });
  }
}

/** Too many requests from one key (or address) in the current window. */
export class RateLimitedError extends AppError {
  constructor(retryAfterSeconds: number) {
    super("rate_limited", 429, `Too many requests: try again in ${retryAfterSeconds} s`, { retry_after: retryAfterSeconds });
  }
}

/** The process cannot serve now: a dependency (PostgreSQL, Redis, migrations) is not ready. */
export class NotReadyError extends AppError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("not_ready", 503, message, details);
  }
}

/** An upload over a limit: answered 413 and the connection closed, so the rest of the body is never read. */
export class UploadTooLargeError extends PayloadTooLargeError {}

/** PostgreSQL (or another service Tranche cannot work without) cannot be reached: try again shortly. */
export class UnavailableError extends AppError {
  constructor(
    what: string,
    readonly retryAfterSeconds = 2,
  ) {
    super("unavailable", 503, `${what} is unavailable; try again in a few seconds`, { retry_after: retryAfterSeconds });
  }
}

// What a lost or refused database connection looks like, at each layer it may surface from:
// Prisma's codes, the pg driver adapter's kinds, PostgreSQL's SQLSTATEs, socket errnos, and
// the pg driver's own messages (which carry no code).
const PRISMA_CODES = new Set(["P1001", "P1002", "P1008", "P1017", "P2024"]);
const ADAPTER_KINDS = new Set(["DatabaseNotReachable", "ConnectionClosed", "SocketTimeout", "TooManyConnections"]);
// 08xxx connection exception, 57P01-57P03 admin/crash shutdown and "cannot connect now", 53300 too many connections.
const SQLSTATE = /^(08[0-9A-Z]{3}|57P0[1-3]|53300)$/;
const ERRNOS = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "ENOTFOUND"]);
const MESSAGES =
  /Connection terminated|connection error and is not queryable|timeout exceeded when trying to connect|Can't reach database server|Server has closed the connection|the database system is (starting up|shutting down|in recovery|not yet accepting connections)|terminating connection due to (administrator command|crash of another server process)|Client was closed and is not queryable/i;

/** Whether `err` (or anything it wraps) says the database could not be reached or dropped the connection. */
export function isConnectionError(err: unknown): boolean {
  const seen = new Set<unknown>();
  const pending: unknown[] = [err];
  while (pending.length && seen.size < 16) {
    const e = pending.pop();
    if (!e || typeof e !== "object" || seen.has(e)) continue;
    seen.add(e);
    const { code, kind, message, cause, meta, errno } = e as {
      code?: unknown;
      kind?: unknown;
      message?: unknown;
      cause?: unknown;
      meta?: { driverAdapterError?: unknown };
      errno?: unknown;
    };
    if (typeof code === "string" && (PRISMA_CODES.has(code) || SQLSTATE.test(code) || ERRNOS.has(code))) return true;
    if (typeof errno === "string" && ERRNOS.has(errno)) return true;
    if (typeof kind === "string" && ADAPTER_KINDS.has(kind)) return true;
    if (typeof message === "string" && MESSAGES.test(message)) return true;
    pending.push(cause, meta?.driverAdapterError);
  }
  return false;
}

/** The 503 a database connection error becomes; any other error is returned as it is. */
export function asUnavailable(err: unknown): unknown {
  return !(err instanceof AppError) && isConnectionError(err) ? new UnavailableError("The database") : err;
}
