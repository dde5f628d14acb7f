/**
 * The one JSON error middleware. An `AppError` answers with its own status and code; errors
 * from Express and its body parsers carry their own 4xx status, which is honoured (a client
 * error is never a 500). Anything else is a bug: logged with the request id, answered 500.
 */
import type { ErrorRequestHandler } from "express";
import { AppError, asUnavailable, UnavailableError, UploadTooLargeError } from "../errors";
import type { Logger } from "../logger";
import { requestIdOf } from "./request-id";

interface HttpishError {
  type?: string;
  status?: number;
  statusCode?: number;
  limit?: number;
  message?: string;
  code?: string;
  field?: string;
  charset?: string;
  encoding?: string;
}

/** body-parser's error types → our codes. */
const BODY_PARSER_CODES: Record<string, string> = {
  "entity.parse.failed": "malformed_json",
  "entity.too.large": "payload_too_large",
  "charset.unsupported": "unsupported_charset",
  "encoding.unsupported": "unsupported_encoding",
  "request.aborted": "malformed_body",
  "request.size.invalid": "malformed_body",
  "stream.encoding.set": "malformed_body",
  "stream.not.readable": "malformed_body",
};

function describe(e: HttpishError, code: string): string {
  switch (code) {
    case "payload_too_large":
      return `Request body is larger than the limit of ${e.limit} bytes`;
    case "malformed_json":
      return `Request body is not valid JSON: ${e.message}`;
    case "unsupported_charset":
      return `Unsupported charset "${e.charset ?? "?"}": send JSON as UTF-8`;
    case "unsupported_encoding":
      return `Unsupported or broken Content-Encoding "${e.encoding ?? "?"}": send identity, gzip, deflate or br`;
    default:
      return e.message ?? "Bad request";
  }
}

function clientError(e: HttpishError): { status: number; code: string; error: string } | undefined {
  if (e.code === "LIMIT_FILE_SIZE") return { status: 413, code: "payload_too_large", error: `Uploaded file ${e.field ?? ""} is larger than the limit` };
  if (typeof e.code === "string" && e.code.startsWith("LIMIT_")) return { status: 400, code: "validation_failed", error: `Upload refused: ${e.message}` };
  const status = e.status ?? e.statusCode;
  if (typeof status !== "number" || status < 400 || status > 499) return undefined;
  const code = (e.type && BODY_PARSER_CODES[e.type]) ?? (e instanceof URIError ? "malformed_url" : "bad_request");
  return { status, code, error: e instanceof URIError ? `Malformed percent-encoding in the URL: ${e.message}` : describe(e, code) };
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (thrown: unknown, req, res, _next) => {
    // A lost database is not a bug: the client is told to come back (503 with Retry-After).
    const err = asUnavailable(thrown);
    const requestId = requestIdOf(res);
    const answer =
      err instanceof AppError
        ? { status: err.status, body: { success: false, error: err.message, code: err.code, ...err.details } }
        : (() => {
            const c = clientError((err ?? {}) as HttpishError);
            return c && { status: c.status, body: { success: false, code: c.code, error: c.error } };
          })();
    if (answer && answer.status < 500) logger.debug({ requestId, method: req.method, url: req.originalUrl, status: answer.status, code: answer.body.code }, "request refused");
    else if (err instanceof UnavailableError) logger.warn({ err: thrown, requestId, method: req.method, url: req.originalUrl }, "answered 503: the database is unavailable");
    else logger.error({ err, requestId, method: req.method, url: req.originalUrl }, "unhandled error");
    // A stream (results, live events) that fails midway cannot change its status any more.
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // An upload over its limit is not stored: the rest of its body is discarded as it arrives (so the
    // client reads the 413 instead of a reset) and the connection is cut 2 s later, whatever is left.
    if (err instanceof UploadTooLargeError) {
      res.once("finish", () => {
        req.resume();
        setTimeout(() => req.socket.destroy(), 2000).unref();
      });
    }
    if (err instanceof UnavailableError) res.set("Retry-After", String(err.retryAfterSeconds));
    if (answer) res.status(answer.status).json(answer.body);
    else res.status(500).json({ success: false, code: "internal_error", error: "Internal server error", request_id: requestId });
  };
}
