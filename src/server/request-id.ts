/**
 * Gives every request an id: the caller's `X-Request-Id` when it is a sane token, else a new
 * UUID. It is echoed in the response and carried by every log line about the request, so a
 * 500 a user reports can be found in the logs.
 */
import { randomUUID } from "node:crypto";
import type { RequestHandler, Response } from "express";

const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestId(): RequestHandler {
  return (req, res, next) => {
    const given = req.get("x-request-id");
    const id = given !== undefined && SANE_ID.test(given) ? given : randomUUID();
    res.locals.requestId = id;
    res.set("x-request-id", id);
    next();
  };
}

/** The id `requestId()` gave this response's request. */
export const requestIdOf = (res: Response): string | undefined => res.locals.requestId as string | undefined;
