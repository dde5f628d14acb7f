/**
 * The routes about access itself: `/api/session` (who am I; the web UI's sign-in cookie and
 * sign-out) for any valid key, and `/api/keys` (create, list, revoke) for admins.
 */
import { Router, type Request, type Response } from "express";
import { z } from "zod";
import type { KeyStore } from "../auth/api-keys";
import { presentedKey, principalOf, SESSION_COOKIE, type Auth } from "../auth/guard";
import { roleSchema, type Principal } from "../auth/roles";
import { NotFoundError, UnauthorizedError } from "../errors";
import { DEFAULT_TENANT, TENANT_PATTERN } from "../tenants";
import { parse } from "./routes";

export const createKeySchema = z.strictObject({
  name: z.string().trim().min(1).max(100),
  role: roleSchema,
  tenant: z.string().regex(TENANT_PATTERN, "letters, digits, '.', '_' or '-', at most 64").default(DEFAULT_TENANT),
});

const present = (p: Principal, authEnabled: boolean) => ({
  authentication: authEnabled ? "keys" : "off",
  key: { id: p.keyId, name: p.name, role: p.role, tenant: p.tenant },
});

function me(res: Response): Principal {
  const p = principalOf(res);
  if (!p) throw new UnauthorizedError();
  return p;
}

/** Any valid key: mounted after `requireKey`, before the role checks, so a viewer can sign in and out. */
export function createSessionRouter(auth: Auth): Router {
  const router = Router();
  router.get("/session", (_req, res) => {
    res.json({ success: true, ...present(me(res), auth.enabled) });
  });
  // The key came in a header (a cookie does not count for POST): keep it in a session cookie
  // so the browser can open the live stream, the dashboard and the visualizer with it.
  router.post("/session", (req: Request, res) => {
    const p = me(res);
    const key = presentedKey(req);
    if (auth.enabled && key) {
      res.cookie(SESSION_COOKIE, key, { httpOnly: true, sameSite: "strict", secure: req.secure, path: "/" });
    }
    res.json({ success: true, ...present(p, auth.enabled) });
  });
  router.delete("/session", (req, res) => {
    me(res);
    res.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: "strict", secure: req.secure, path: "/" });
    res.json({ success: true });
  });
  return router;
}

/** Admins only. */
export function createKeysRouter(auth: Auth, keys: KeyStore): Router {
  const router = Router();
  router.use("/keys", auth.requireRole("admin"));
  router.post("/keys", async (req, res) => {
    const body = parse(createKeySchema, req.body ?? {});
    const created = await keys.create(body);
    res.status(201).json({ success: true, ...created });
  });
  router.get("/keys", async (_req, res) => {
    res.json({ success: true, keys: await keys.list() });
  });
  router.delete("/keys/:keyId", async (req, res) => {
    const keyId = req.params.keyId as string;
    const revoked = /^[0-9a-f]{16}$/.test(keyId) ? await keys.revoke(keyId) : null;
    if (!revoked) throw new NotFoundError("API key", keyId);
    res.json({ success: true, key: revoked });
  });
  return router;
}
