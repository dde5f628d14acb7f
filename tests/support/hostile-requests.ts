/**
 * Hostile HTTP requests for the property test and `npm run fuzz`: every route of an Express
 * app (found by walking its router stack, so new routes are covered by themselves) with
 * generated path parameters, query strings, headers and bodies — NUL bytes, lone surrogates,
 * bad percent-encoding, foreign origins and hosts, odd charsets and encodings, broken
 * multipart, deep nesting, oversize fields — sent raw over node:http so nothing is tidied up
 * on the way, and the checks every answer must pass.
 */
import http from "node:http";
import fc from "fast-check";
import type { Express } from "express";

export interface Route {
  method: string;
  /** Express path template, e.g. `/api/batches/:id/pause`. */
  path: string;
}

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  rawPath?: string;
}

/** Every route of the app, mounted routers included (Express 5 keeps a mount's path as `rawPath`). */
export function listRoutes(app: Express): Route[] {
  const routes: Route[] = [];
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const method of Object.keys(layer.route.methods)) routes.push({ method: method.toUpperCase(), path: prefix + layer.route.path });
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack, prefix + (layer.rawPath ?? ""));
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, "");
  return routes;
}

export interface HostileRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** The route it was made from, for the figures. */
  route: string;
}

const NASTY = [
  "\u0000", "a\u0000b", "\uD800", "x\uDFFFy", "\uDBFF\uDBFF", "😀", "\u202Eevil", "' OR 1=1 --", "../../etc/passwd", "<script>alert(1)</script>",
  "", " ", "null", "-1", "0", "1e300", "-0", "NaN", "Infinity", "0x10", "9".repeat(40), "__proto__", "constructor", "true", "[]", "{}",
  "%", "%ff", "%00", "%E0%A4%A", "\r\n", "\\", "\t",
];

const nastyString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NASTY) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 200 }) },
  { weight: 1, arbitrary: fc.integer({ min: 190, max: 120_000 }).map((n) => "x".repeat(n)) },
);

const scalar = fc.oneof(
  nastyString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(2 ** 31, 2 ** 53, -(2 ** 31) - 1, 1e300, -1e300, 0.5),
);

const { json } = fc.letrec<{ json: unknown }>((tie) => ({
  json: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalar,
    fc.array(tie("json"), { maxLength: 4 }),
    fc.dictionary(nastyString, tie("json"), { maxKeys: 4 }),
  ),
}));

const nest = (depth: number, leaf: unknown): unknown => {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
};
const deep = fc.integer({ min: 20, max: 3000 }).map((n) => nest(n, "leaf"));
const anyJson = fc.oneof({ weight: 5, arbitrary: json }, { weight: 1, arbitrary: deep });

const maybe = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: valid }, { weight: 1, arbitrary: anyJson });

const outputSchema = fc.oneof(
  fc.constant({ type: "object", properties: { parties: { type: "array", items: { type: "string" } } } }),
  fc.constant({ type: "string", pattern: "^(a+)+$" }),
  fc.constant({ type: "string", pattern: "(a)\\1" }),
  fc.constant({ $ref: "https://example.com/evil.json" }),
  fc.constant({ $ref: "#/$defs/missing" }),
  fc.constant({ type: "nonsense" }),
  fc.integer({ min: 20, max: 700 }).map((n) => nest(n, { type: "string" })),
  json,
);

const documentArb = fc.record(
  {
    name: maybe(fc.constantFrom("a.txt", "b.md", "c.html", "noext", "d".repeat(300))),
    content: maybe(fc.constantFrom("plain text", "a\u0000b", "")),
    content_base64: maybe(fc.constantFrom("aGVsbG8=", "!!!not base64", "")),
    mime_type: maybe(fc.constantFrom("text/plain", "application/pdf", "x", "text/\u0000")),
  },
  { requiredKeys: ["name"] },
);

const createBody = fc.record(
  {
    name: maybe(fc.constantFrom("fuzz batch", "")),
    analysis: maybe(
      fc.record(
        {
          instructions: maybe(fc.constantFrom("Summarise.", "i".repeat(100_001))),
          output_schema: outputSchema,
          provider: maybe(fc.constantFrom("openai", "anthropic", "local", "evil")),
          model: maybe(fc.constantFrom("gpt-4o-mini", "m".repeat(300))),
          temperature: maybe(fc.double({ min: -1, max: 3 })),
          max_tokens: maybe(fc.integer({ min: -5, max: 2_000_000 })),
          failure_tolerance: maybe(fc.double({ min: -1, max: 2 })),
          staging_tolerance: maybe(fc.double({ min: -1, max: 2 })),
        },
        { requiredKeys: ["instructions"] },
      ),
    ),
    documents: maybe(fc.array(documentArb, { maxLength: 3 })),
    priority: maybe(fc.integer({ min: -2000, max: 2000 })),
  },
  { requiredKeys: [] },
);

/** Well-formed creations (some with a hostile output_schema), so that accepted paths are walked too. */
const validCreateBody = fc.record({
  name: fc.constantFrom("fuzz batch", "batch 🚀"),
  analysis: fc.record({ instructions: fc.constant("Summarise."), output_schema: outputSchema }, { requiredKeys: ["instructions"] }),
  documents: fc.array(fc.record({ name: fc.constantFrom("a.txt", "b.md"), content: fc.constantFrom("text", "a\u0000b") }), { maxLength: 2 }),
});

const ACTIONS = ["stage", "run", "pause", "resume", "cancel", "reset", "restage", "rerun", "retry-failed", "delete", "START", "TASK_COMPLETED"];
const actionBody = fc.record(
  {
    action: maybe(fc.constantFrom(...ACTIONS)),
    context: maybe(fc.record({ reason: maybe(fc.constant("because")), position: maybe(fc.integer({ min: -3, max: 2 ** 31 })) }, { requiredKeys: [] })),
    reason: maybe(fc.constant("because")),
    position: maybe(fc.integer({ min: -3, max: 5 })),
    expected_version: maybe(fc.integer({ min: -1, max: 20 })),
    batch_id: maybe(fc.uuid()),
    documents: maybe(fc.array(documentArb, { maxLength: 2 })),
  },
  { requiredKeys: [] },
);

const jsonBody = fc.oneof(validCreateBody, createBody, actionBody, anyJson).map((v) => Buffer.from(JSON.stringify(v) ?? "null"));

const multipartBody = fc
  .tuple(
    fc.constantFrom("XyZ", "----b", ""),
    fc.array(fc.tuple(fc.constantFrom("name", "instructions", "analysis", "priority", "files", "\u0000"), nastyString, fc.boolean()), { maxLength: 4 }),
    fc.boolean(),
  )
  .map(([boundary, parts, truncate]) => {
    const text = parts
      .map(([field, value, isFile]) =>
        isFile
          ? `--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="${value}"\r\nContent-Type: text/plain\r\n\r\n${value}\r\n`
          : `--${boundary}\r\nContent-Disposition: form-data; name="${field}"\r\n\r\n${value}\r\n`,
      )
      .join("");
    const full = `${text}--${boundary}--\r\n`;
    return { boundary, body: Buffer.from(truncate ? full.slice(0, Math.floor(full.length / 2)) : full) };
  });

const rawBody = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  fc.constantFrom('{"name":', "[1,2", "{}", "null", '"just a string"', "\uFEFF{}", "{\"a\":\"\\ud800\"}").map((s) => Buffer.from(s)),
);

/** What a path parameter is: a known id, a random UUID, or something hostile (kept sendable: printable, percent-encoded). */
function paramArb(ids: string[]) {
  const encoded = nastyString.map((s) =>
    Array.from(Buffer.from(s, "utf8"))
      .map((b) => (/[A-Za-z0-9._~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, "0")}`))
      .join(""),
  );
  return fc.oneof(
    { weight: ids.length ? 5 : 0, arbitrary: ids.length ? fc.constantFrom(...ids) : fc.uuid() },
    { weight: 1, arbitrary: fc.uuid() },
    { weight: 2, arbitrary: fc.constantFrom("%ff", "%", "%00", "%E0%A4%A", "%C0%AF", "..", "x".repeat(2000), "%F0%9F%98", "not-a-uuid") },
    { weight: 1, arbitrary: encoded },
  );
}

const queryValue = fc.oneof(
  fc.constantFrom("STAGING,PAUSED", "BOGUS", "50", "-1", "1e400", "0", "500", "501", "json", "csv", "xml", "%ff", "%00", "", "%E0%A4%A", "1.5"),
  fc.integer().map(String),
);
const queryArb = fc
  .array(fc.tuple(fc.constantFrom("status", "limit", "offset", "after_seq", "format", "x", "__proto__", "%ff"), queryValue), { maxLength: 4 })
  .map((pairs) => (pairs.length ? `?${pairs.map(([k, v]) => `${k}=${v}`).join("&")}` : ""));

/** Requests for `routes`, against a server reached as `host` (e.g. `127.0.0.1:3000`), with `ids` of real batches to aim at. */
export function hostileRequests(routes: Route[], ids: string[], host: string): fc.Arbitrary<HostileRequest> {
  const param = paramArb(ids);
  return fc
    .record({
      route: fc.constantFrom(...routes),
      params: fc.array(param, { minLength: 4, maxLength: 4 }),
      query: queryArb,
      body: fc.oneof(
        { weight: 6, arbitrary: jsonBody.map((body) => ({ type: "json" as const, body, boundary: "" })) },
        { weight: 2, arbitrary: multipartBody.map((m) => ({ type: "multipart" as const, ...m })) },
        { weight: 1, arbitrary: rawBody.map((body) => ({ type: "raw" as const, body, boundary: "" })) },
        { weight: 1, arbitrary: fc.constant({ type: "none" as const, body: Buffer.alloc(0), boundary: "" }) },
      ),
      contentType: fc.oneof(
        { weight: 8, arbitrary: fc.constant("natural") },
        { weight: 1, arbitrary: fc.constantFrom("application/json; charset=latin1", "application/json; charset=utf-16", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "garbage/", "application/json; charset=\"", "") },
      ),
      encoding: fc.oneof({ weight: 8, arbitrary: fc.constant("") }, { weight: 1, arbitrary: fc.constantFrom("gzip", "deflate", "br", "x-bogus", "identity", "gzip, gzip") }),
      origin: fc.oneof({ weight: 6, arbitrary: fc.constant("") }, { weight: 1, arbitrary: fc.constantFrom(`http://${host}`, "https://evil.example", "null", "not a url") }),
      hostHeader: fc.oneof({ weight: 9, arbitrary: fc.constant(host) }, { weight: 1, arbitrary: fc.constantFrom("evil.example", "rebind.test:3000", "[::1]", "localhost", "127.0.0.1:1", "a b") }),
      extra: fc.record(
        {
          "if-match": fc.constantFrom("1", "W/\"2\"", "9".repeat(30), "*", "\"x\""),
          "last-event-id": fc.constantFrom("1", "1e300", "abc", "-1", String(Date.now())),
          "x-request-id": fc.constantFrom("ok-id", "bad id", "x".repeat(300)),
          accept: fc.constantFrom("text/event-stream", "*/*", "application/xml"),
        },
        { requiredKeys: [] },
      ),
    })
    .map(({ route, params, query, body, contentType, encoding, origin, hostHeader, extra }) => {
      let n = 0;
      const path = route.path.replace(/:(\w+)|\{\*\w+\}|\*\w*/g, () => params[n++ % params.length]!) + query;
      const headers: Record<string, string> = { host: hostHeader, ...extra };
      const natural = body.type === "multipart" ? `multipart/form-data; boundary=${body.boundary}` : body.type === "none" ? "" : "application/json";
      const type = contentType === "natural" ? natural : contentType;
      if (type) headers["content-type"] = type;
      if (encoding) headers["content-encoding"] = encoding;
      if (origin) headers.origin = origin;
      const withBody = route.method !== "GET" && route.method !== "HEAD" && body.type !== "none";
      if (withBody) headers["content-length"] = String(body.body.length);
      const req: HostileRequest = { method: route.method, path, headers, ...(withBody && { body: body.body }), route: `${route.method} ${route.path}` };
      // Counterexamples print short: a 120 KB path would drown the report.
      return Object.assign(req, { [fc.toStringMethod]: () => describeRequest(req) });
    });
}

const cut = (s: string, n = 200) => (s.length > n ? `${s.slice(0, n)}…(${s.length} chars)` : s);

/** A request in one readable line, long parts cut. */
export function describeRequest(req: HostileRequest): string {
  const headers = Object.entries(req.headers).map(([k, v]) => `${k}: ${cut(v, 80)}`).join("; ");
  return `${req.method} ${cut(req.path)} [${headers}] body ${req.body ? cut(JSON.stringify(req.body.toString("utf8"))) : "none"}`;
}

export interface HostileAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** Sends one request exactly as built; an event stream is answered by its headers alone. */
export function send(baseUrl: string, req: HostileRequest, timeoutMs = 15_000): Promise<HostileAnswer> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const r = http.request(
      { host: url.hostname, port: url.port, method: req.method, path: req.path, headers: req.headers, setHost: false, agent: false, timeout: timeoutMs },
      (res) => {
        const contentType = String(res.headers["content-type"] ?? "");
        if (contentType.startsWith("text/event-stream")) {
          res.destroy();
          resolve({ status: res.statusCode ?? 0, contentType, body: "" });
          return;
        }
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, contentType, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    r.on("timeout", () => r.destroy(new Error(`no answer within ${timeoutMs} ms: ${req.method} ${req.path}`)));
    r.on("error", reject);
    r.end(req.body);
  });
}

/** What is wrong with an answer: a 5xx, or a 4xx whose body is not `{ code, error }` JSON. */
export function answerProblems(req: HostileRequest, res: HostileAnswer): string[] {
  const what = `${req.method} ${cut(req.path)}`;
  if (res.status >= 500) return [`${res.status} for ${describeRequest(req)}: ${cut(res.body, 300)}`];
  if (res.status < 400 || req.method === "HEAD") return [];
  let body: { code?: unknown; error?: unknown } | undefined;
  try {
    body = JSON.parse(res.body) as typeof body;
  } catch {
    return [`${res.status} without a JSON body for ${what}: ${cut(res.body)}`];
  }
  if (typeof body?.code !== "string" || typeof body?.error !== "string") return [`${res.status} without code and error for ${what}: ${cut(res.body)}`];
  return [];
}

/** The batch id a request aims at, when its path names one. */
export function targetBatch(req: HostileRequest): string | undefined {
  return /^\/api\/batches\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:[/?]|$)/i.exec(req.path)?.[1];
}
