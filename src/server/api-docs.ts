/**
 * `GET /api/openapi.json` (the document generated from the zod schemas) and `/api/docs`, a
 * Swagger UI over it served from the swagger-ui-dist package (no CDN, works offline).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { Router } from "express";
import { lazyRouter } from "./lazy-router";

const packageVersion = (): string =>
  (JSON.parse(readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8")) as { version: string }).version;

/** Both are built on first use: the document and Swagger UI are of no use to most API processes' memory. */
export function createApiDocsRouter(): Router {
  let document: Promise<unknown> | undefined;
  const router = Router();
  router.get("/openapi.json", (_req, res, next) => {
    document ??= import("./openapi").then(({ buildOpenApiDocument }) => buildOpenApiDocument(packageVersion()));
    document.then((d) => res.json(d), next);
  });
  router.use(
    "/docs",
    lazyRouter(async () => {
      const { default: swaggerUi } = await import("swagger-ui-express");
      const docs = Router();
      docs.use(swaggerUi.serve, swaggerUi.setup(undefined, { customSiteTitle: "Tranche API", swaggerOptions: { url: "/api/openapi.json" } }));
      return docs;
    }),
  );
  return router;
}
