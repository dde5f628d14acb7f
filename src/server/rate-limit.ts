/**
 * The request limit of every API process: `RATE_LIMIT_PER_MINUTE` per key (per address for
 * requests without a valid key), counted in Redis so that all API processes share one count.
 * Over it: 429 `rate_limited` with `Retry-After`. If Redis cannot count, requests go through:
 * the limit guards against abuse, it must not take the API down with Redis.
 */
import type { RequestHandler } from "express";
import { ipKeyGenerator, rateLimit } from "express-rate-limit";
import type { Redis } from "ioredis";
import { RedisStore, type RedisReply } from "rate-limit-redis";
import { principalOf } from "../auth/guard";
import { RateLimitedError } from "../errors";

export interface RateLimitDeps {
  redis: Redis;
  /** Keys live under `<prefix>:ratelimit:`. */
  prefix: string;
  perMinute: number;
  windowMs?: number;
}

export function createRateLimit({ redis, prefix, perMinute, windowMs = 60_000 }: RateLimitDeps): RequestHandler {
  return rateLimit({
    windowMs,
    limit: perMinute,
    standardHeaders: "draft-7",
    legacyHeaders: false,
    passOnStoreError: true,
    store: new RedisStore({
      prefix: `${prefix}:ratelimit:`,
      sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as Promise<RedisReply>,
    }),
    keyGenerator: (req, res) => {
      const p = principalOf(res);
      return p && p.keyId !== "local" ? `key:${p.keyId}` : `ip:${ipKeyGenerator(req.ip ?? "")}`;
    },
    handler: (_req, res, next) => next(new RateLimitedError(Number(res.getHeader("retry-after")) || Math.ceil(windowMs / 1000))),
  });
}
