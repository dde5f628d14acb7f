/**
 * A router built on its first request: pages few requests reach (the queue dashboard, the API
 * docs) bring large packages that an API process should not hold in memory until someone asks.
 */
import type { RequestHandler } from "express";

export function lazyRouter(load: () => Promise<RequestHandler>): RequestHandler {
  let router: Promise<RequestHandler> | undefined;
  return (req, res, next) => {
    router ??= load();
    router.then(
      (handler) => handler(req, res, next),
      (err: unknown) => {
        router = undefined;
        next(err);
      },
    );
  };
}
