/**
 * Security headers (helmet) with a Content-Security-Policy the web UI, the BullMQ dashboard
 * and the machine visualizer work under: scripts only from this server; inline styles allowed
 * (React, bull-board and mermaid's SVG set style attributes); no `upgrade-insecure-requests`,
 * which would break a plain-http install on a network.
 */
import type { RequestHandler } from "express";
import helmet from "helmet";

export function securityHeaders(): RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", "data:", "blob:"],
        fontSrc: ["'self'", "data:"],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
  });
}
