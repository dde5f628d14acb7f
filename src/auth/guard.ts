/**
 * The HTTP side of authentication: who is asking (`identify`, for every path), and the
 * checks routes put in front of themselves (`requireKey`, `requireRole`, `requireRoleForMethod`,
 * `loopbackOrRole`). With authentication off every request is the local single user, an
 * admin of the default tenant, and every check passes.
 *
 * A key comes as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Browsers cannot put
 * headers on an EventSource, a dashboard page or a visualizer link, so the web UI also
 * stores the key in an HttpOnly, SameSite=Strict session cookie (`POST /api/session`);
 * that cookie counts for reads (GET/HEAD) and for the queue dashboard, never for changes
 * through the API.
 */
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { ForbiddenError, UnauthorizedError } from "../errors";
import { DEFAULT_TENANT } from "../tenants";
import type { KeyStore } from "./api-keys";
import { sameSecret } from "./api-keys";
import { isLoopback, type AuthMode } from "./mode";
import { roleAtLeast, type Principal, type Role } from "./roles";

export const SESSION_COOKIE = "tranche_key";
const DASHBOARD_PATH = "/admin/queues";

export const LOCAL_PRINCIPAL: Principal = { keyId: "local", name: "local", role: "admin", tenant: DEFAULT_TENANT };
const ADMIN_PRINCIPAL: Principal = { keyId: "admin", name: "ADMIN_API_KEY", role: "admin", tenant: DEFAULT_TENANT };

/** The caller as `identify` found it: null when authentication is on and no valid key came. */
export function principalOf(res: Response): Principal | null {
  return (res.locals.principal as Principal | null | undefined) ?? null;
}

function cookie(req: Request, name: string): string | undefined {
  for (const part of (req.get("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** The key the request carries, by header; or by the session cookie where a cookie may count. */
export function presentedKey(req: Request): string | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.get("authorization") ?? "");
  if (bearer) return bearer[1];
  const header = req.get("x-api-key")?.trim();
  if (header) return header;
  const safe = req.method === "GET" || req.method === "HEAD";
  if (safe || req.originalUrl.startsWith(`${DASHBOARD_PATH}/`) || req.originalUrl === DASHBOARD_PATH) return cookie(req, SESSION_COOKIE);
  return undefined;
}

export interface AuthDeps {
  mode: AuthMode;
  /** Needed when keys are on; without it only ADMIN_API_KEY is accepted. */
  keys?: KeyStore;
}

export function createAuth({ mode, keys }: AuthDeps) {
  const enabled = mode.kind === "keys";

  async function identifyKey(presented: string | undefined): Promise<Principal | null> {
    if (mode.kind !== "keys") return LOCAL_PRINCIPAL;
    if (!presented) return null;
    if (sameSecret(presented, mode.adminKey)) return ADMIN_PRINCIPAL;
    return (await keys?.verify(presented)) ?? null;
  }

  /** Finds out who is asking and leaves it for `principalOf`; refuses nothing. */
  const identify: RequestHandler = async (req, res, next) => {
    res.locals.principal = await identifyKey(presentedKey(req));
    next();
  };

  /** 401 unless the request came with a valid key. */
  const requireKey: RequestHandler = (_req, res, next) => {
    if (!principalOf(res)) throw new UnauthorizedError();
    next();
  };

  /** 401 without a valid key, 403 when its role is below `needed`. */
  const requireRole =
    (needed: Role): RequestHandler =>
    (_req, res, next) => {
      const p = principalOf(res);
      if (!p) throw new UnauthorizedError();
      if (!roleAtLeast(p.role, needed)) throw new ForbiddenError(p.role, needed);
      next();
    };

  /** Reads need a viewer, everything else an operator: a route added later is guarded by default. */
  const requireRoleForMethod: RequestHandler = (req, res, next) => {
    const read = req.method === "GET" || req.method === "HEAD" || req.method === "OPTIONS";
    requireRole(read ? "viewer" : "operator")(req, res, next);
  };

  /**
   * For operators' endpoints such as /metrics: with authentication on, only a request from
   * this machine (a loopback address) or one with a key of role `needed` gets through.
   */
  const loopbackOrRole =
    (needed: Role = "admin"): RequestHandler =>
    (req: Request, res: Response, next: NextFunction) => {
      if (!enabled || isLoopback(req.socket.remoteAddress ?? "")) return next();
      requireRole(needed)(req, res, next);
    };

  return { enabled, mode, identifyKey, identify, requireKey, requireRole, requireRoleForMethod, loopbackOrRole };
}

export type Auth = ReturnType<typeof createAuth>;
