/**
 * `GET /api/openapi.json` (the document generated from the zod schemas) and `/api/docs`, a
 * Swagger UI over it served from the swagger-ui-dist package (no CDN, works offline).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { Router } from "express";
import swaggerUi from "swagger-ui-express";
import { buildOpenApiDocument } from "./openapi";

const packageVersion = (): string =>
  (JSON.parse(readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8")) as { version: string }).version;

export function createApiDocsRouter(): Router {
  const document = buildOpenApiDocument(packageVersion());
  const router = Router();
  router.get("/openapi.json", (_req, res) => {
    res.json(document);
  });
  router.use(
    "/docs",
    swaggerUi.serve,
    swaggerUi.setup(undefined, { customSiteTitle: "Tranche API", swaggerOptions: { url: "/api/openapi.json" } }),
  );
  return router;
}
