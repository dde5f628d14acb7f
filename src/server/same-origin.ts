/**
 * Keeps other web pages from driving a Tranche that listens on this machine:
 *
 * - the `Host` header must name this server (`ALLOWED_HOSTS`), so a DNS-rebound name that
 *   points at 127.0.0.1 is refused;
 * - a state-changing request (anything but GET, HEAD, OPTIONS) with a body must be JSON or
 *   multipart, the types a page on another site cannot send without a CORS preflight — a
 *   `text/plain` or urlencoded form POST never reaches a handler;
 * - and its `Origin`, when a browser sent one, must be this server's own or an allowed one.
 */
import type { RequestHandler } from "express";
import { ForbiddenRequestError, UnsupportedMediaTypeError } from "../errors";

export interface SameOriginOptions {
  /** Host names (no port) this server answers to; `*` accepts any. */
  allowedHosts: string[];
  /** Further origins (`https://app.example.com`) whose pages may change state, e.g. the CORS ones. */
  allowedOrigins?: string[];
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
// A zip archive body (adding documents): like JSON, not a type a cross-site form can send without preflight.
const BODY_TYPES = ["application/json", "multipart/form-data", "application/zip", "application/x-zip-compressed"];

/** `example.com:3000` → `example.com`; `[::1]:3000` → `::1`; undefined when it is not a host. */
export function hostName(host: string): string | undefined {
  const m = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9.-]+))(?::\d{1,5})?$/i.exec(host.trim());
  return m ? (m[1] ?? m[2])!.toLowerCase().replace(/\.$/, "") : undefined;
}

/** The hosts a server listening on `listenHost` answers to by default. */
export function defaultAllowedHosts(listenHost: string): string[] {
  const hosts = ["localhost", "127.0.0.1", "::1"];
  const own = hostName(listenHost.includes(":") && !listenHost.startsWith("[") ? `[${listenHost}]` : listenHost);
  if (own && own !== "0.0.0.0" && own !== "::" && !hosts.includes(own)) hosts.push(own);
  return hosts;
}

/** `https://a.example:8443` → `a.example:8443`; undefined for `null` and anything else that is no URL. */
function originHost(origin: string): string | undefined {
  try {
    return new URL(origin).host.toLowerCase();
  } catch {
    return undefined;
  }
}

export function sameOrigin({ allowedHosts, allowedOrigins = [] }: SameOriginOptions): RequestHandler {
  const anyHost = allowedHosts.includes("*");
  const hosts = new Set(allowedHosts.map((h) => h.toLowerCase()));
  const origins = new Set(allowedOrigins.map((o) => o.replace(/\/$/, "").toLowerCase()));
  return (req, _res, next) => {
    const host = req.get("host") ?? "";
    const name = hostName(host);
    if (!anyHost && (name === undefined || !hosts.has(name))) {
      throw new ForbiddenRequestError("host_not_allowed", `Host "${host}" is not one this server answers to (ALLOWED_HOSTS)`);
    }
    if (SAFE_METHODS.has(req.method)) return next();
    const origin = req.get("origin");
    if (origin !== undefined) {
      if (originHost(origin) !== host.toLowerCase() && !origins.has(origin.toLowerCase())) {
        throw new ForbiddenRequestError("cross_origin", `Requests from origin "${origin}" may not change anything here`);
      }
    }
    const empty = req.get("transfer-encoding") === undefined && Number(req.get("content-length") ?? 0) === 0;
    if (!empty && req.is(BODY_TYPES) === false) {
      throw new UnsupportedMediaTypeError("unsupported_media_type", `Content-Type "${req.get("content-type") ?? ""}" is not accepted: send application/json, multipart/form-data or application/zip`);
    }
    next();
  };
}
