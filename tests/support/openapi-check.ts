/**
 * Checks every answer an app gives against the OpenAPI document: the route and status must be
 * in it, the content type declared, and a JSON body must match the response schema (ajv,
 * draft 2020-12). Wrap an app with `checkAnswers(app)`, drive it as usual, and assert that
 * `problems` is empty after each test.
 */
import Ajv2020, { type ValidateFunction } from "ajv/dist/2020";
import addFormats from "ajv-formats";
import express, { type Express } from "express";
import { buildOpenApiDocument } from "../../src/server/openapi";

type Json = Record<string, unknown>;

export const openApiDocument = buildOpenApiDocument("test");

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
const compiled = new Map<unknown, ValidateFunction>();
const validatorFor = (schema: Json) => {
  let v = compiled.get(schema);
  if (!v) compiled.set(schema, (v = ajv.compile(schema)));
  return v;
};

const templates = Object.keys(openApiDocument.paths as Json).map((template) => ({
  template,
  regex: new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`),
}));

function responseFor(method: string, path: string, status: number): { response?: Json; problem?: string } {
  const found = templates.filter((t) => t.regex.test(path)).sort((a, b) => a.template.split("{").length - b.template.split("{").length)[0];
  if (!found) return {};
  const operation = ((openApiDocument.paths as Json)[found.template] as Json)[method.toLowerCase()] as Json | undefined;
  if (!operation) return { problem: `${method} ${found.template} is not in the document` };
  let response = (operation.responses as Json)[String(status)] as Json | undefined;
  if (!response) return { problem: `${method} ${found.template} answered ${status}, which the document does not list` };
  const ref = response.$ref as string | undefined;
  if (ref) response = ((openApiDocument.components as Json).responses as Json)[ref.split("/").pop() as string] as Json;
  return { response };
}

/** The problems with one answer, or none. */
export function answerProblems(method: string, path: string, status: number, contentType: string | undefined, body: unknown): string[] {
  const { response, problem } = responseFor(method, path, status);
  if (problem) return [problem];
  if (!response) return [];
  const content = (response.content ?? {}) as Json;
  const type = (contentType ?? "").split(";")[0]?.trim() ?? "";
  if (!Object.keys(content).length) return [];
  const media = content[type] as Json | undefined;
  if (!media) return [`${method} ${path} ${status}: content type "${type}" is not one of ${Object.keys(content).join(", ")}`];
  if (type !== "application/json" || body === undefined) return [];
  const validate = validatorFor(media.schema as Json);
  if (validate(body)) return [];
  return (validate.errors ?? []).map((e) => `${method} ${path} ${status}: ${e.instancePath || "/"} ${e.message ?? "is invalid"} (${JSON.stringify(e.params)})`);
}

/** The app behind a recorder that checks every JSON answer against the document. */
export function checkAnswers(app: Express): { app: Express; problems: string[] } {
  const problems: string[] = [];
  const outer = express();
  outer.use((req, res, next) => {
    let body: unknown;
    const json = res.json.bind(res);
    res.json = (value: unknown) => {
      body = value;
      return json(value);
    };
    res.on("finish", () => {
      const path = req.originalUrl.split("?")[0] ?? req.originalUrl;
      problems.push(...answerProblems(req.method, path, res.statusCode, res.get("content-type"), body));
    });
    next();
  });
  outer.use(app);
  return { app: outer, problems };
}
