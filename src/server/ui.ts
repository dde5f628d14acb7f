/**
 * Serves the web UI (`ui/`, built by Vite into `ui/dist`): hashed assets cached for good,
 * index.html for every other page path so that reloading a client route works.
 * `ensureUiBuilt` builds it when it is missing, so `npm start` needs no separate build step.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import express, { Router } from "express";
import type { Logger } from "../logger";

export const UI_ROOT = path.resolve(__dirname, "../../ui");
export const UI_DIST = path.join(UI_ROOT, "dist");

const IMMUTABLE = "public, max-age=31536000, immutable";

export function createUiRouter(options: { distDir: string }): Router {
  const { distDir } = options;
  const index = path.join(distDir, "index.html");
  const router = Router();
  router.use(
    express.static(distDir, {
      index: false,
      setHeaders(res, file) {
        // Vite names files under assets/ by their content hash, so they never change.
        res.setHeader("Cache-Control", path.relative(distDir, file).startsWith(`assets${path.sep}`) ? IMMUTABLE : "no-cache");
      },
    }),
  );
  // Page paths only: a missing file (a path with an extension) stays a 404 instead of becoming the app.
  router.get("/{*splat}", (req, res, next) => {
    if (path.extname(req.path) || !req.accepts("html")) return next();
    if (!existsSync(index)) {
      res.status(503).type("text/plain").send("The web UI is not built yet: run `npm run ui:build` (npm start builds it when missing).\n");
      return;
    }
    res.setHeader("Cache-Control", "no-cache");
    res.sendFile(index, (err) => err && next(err));
  });
  return router;
}

/**
 * Builds the UI with Vite when `distDir/index.html` is missing. Vite runs in a child process:
 * it is ESM-only and heavy, and this process should not keep its modules after the build.
 * Answers whether the UI is there; a failed build is logged, not thrown, since the API
 * works without the UI.
 */
export async function ensureUiBuilt(distDir: string, logger: Logger): Promise<boolean> {
  if (existsSync(path.join(distDir, "index.html"))) return true;
  logger.info({ distDir }, "building the web UI (it is missing)");
  const vite = path.join(path.dirname(require.resolve("vite/package.json")), "bin", "vite.js");
  const args = [vite, "build", "--config", path.join(UI_ROOT, "vite.config.ts"), "--outDir", distDir, "--emptyOutDir", "--logLevel", "warn"];
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(process.execPath, args, { cwd: UI_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", (err) => resolve({ code: null, output: `${output}${err.message}` }));
    child.on("close", (exitCode) => resolve({ code: exitCode, output }));
  });
  if (code === 0 && existsSync(path.join(distDir, "index.html"))) {
    logger.info({ distDir }, "built the web UI");
    return true;
  }
  logger.error({ distDir, code, output: output.slice(-4000) }, "could not build the web UI; the API works without it");
  return false;
}
