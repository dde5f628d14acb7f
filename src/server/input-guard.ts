/**
 * Refuses, before any handler sees it, input that PostgreSQL cannot store or that would make
 * a handler recurse without bound: a NUL character or a lone UTF-16 surrogate in any string
 * (text and JSONB refuse both), and JSON nested deeper than `MAX_JSON_DEPTH`. The only strings
 * exempt are inline document contents, which are stored as bytes, never as text.
 */
import type { Request, RequestHandler } from "express";
import { ValidationError } from "../errors";

/** Deepest nesting of arrays and objects a request body may have (the body itself is level 1). */
export const MAX_JSON_DEPTH = 64;

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** What is wrong with a string the database must store, or undefined. */
export function unstorable(s: string): string | undefined {
  if (s.includes("\u0000")) return "contains a NUL character (\\u0000), which cannot be stored";
  if (LONE_SURROGATE.test(s)) return "contains invalid Unicode (a lone surrogate)";
  return undefined;
}

const isDocumentContent = (path: string[]) =>
  path.length === 4 && path[0] === "body" && path[1] === "documents" && (path[3] === "content" || path[3] === "content_base64");

/**
 * Walks a parsed value without recursion (a hostile body must not overflow the stack) and
 * throws a `ValidationError` naming the first bad field.
 */
export function assertStorable(value: unknown, where: string, maxDepth = MAX_JSON_DEPTH): void {
  const stack: { value: unknown; path: string[] }[] = [{ value, path: [where] }];
  while (stack.length) {
    const { value: v, path } = stack.pop()!;
    if (typeof v === "string") {
      const problem = isDocumentContent(path) ? undefined : unstorable(v);
      if (problem) throw new ValidationError(`${path.join(".")}: ${problem}`);
      continue;
    }
    if (v === null || typeof v !== "object") continue;
    if (path.length > maxDepth) throw new ValidationError(`${path.join(".")}: nested deeper than ${maxDepth} levels`);
    for (const [key, child] of Object.entries(v)) {
      const keyProblem = unstorable(key);
      if (keyProblem) throw new ValidationError(`${path.join(".")}: a key ${keyProblem}`);
      stack.push({ value: child, path: [...path, key] });
    }
  }
}

/** Checks the parsed body, query and route parameters of a request. */
export function checkRequest(req: Request): void {
  assertStorable(req.query, "query", 4);
  assertStorable(req.params, "params", 2);
  if (req.body !== undefined) assertStorable(req.body, "body");
}

/** `checkRequest` as a middleware, for JSON bodies (multipart fields and file names are checked as they are read, in multipart.ts). */
export function inputGuard(): RequestHandler {
  return (req, _res, next) => {
    checkRequest(req);
    next();
  };
}
