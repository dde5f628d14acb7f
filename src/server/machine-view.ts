/**
 * The machine visualizer at /machine: the batch machine drawn from its own definition
 * (`toMermaid`), and with `?batch=<id>` where that batch stands, what it may do now and the
 * states it went through. The page is rendered here, so it reads without JavaScript; the
 * UI bundle's machine.html (which alone loads mermaid, from ui/dist) turns the text into a
 * drawing. `GET /machine/diagram.mmd?batch=<id>` answers the Mermaid text itself.
 *
 * The machine itself is drawn for anyone; a batch's overlay needs read access to the batch
 * (a key of its tenant, or an admin's; the web UI's session cookie counts).
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { Router, type Request, type Response } from "express";
import { principalOf } from "../auth/guard";
import { tenantScope } from "../auth/roles";
import { AppError, NotFoundError, UnauthorizedError } from "../errors";
import { toMermaid, type DiagramOptions } from "../machines/batch.diagram";
import { UI_DIST } from "./ui";

export interface MachineViewDeps {
  getBatch(id: string): Promise<{ status: string; substate: string | null; allowed_actions: string[]; name?: string; tenant: string }>;
  /** The latest steps of the batch's path (read in the database, never its whole history) and how many earlier ones were left out. */
  getPath(id: string): Promise<{ states: string[]; omitted: number }>;
  /** Where the built UI is (default `ui/dist`); its machine.html is the page's frame. */
  distDir?: string;
}

interface BatchStanding {
  id: string;
  name?: string;
  state: string;
  allowed: string[];
  path: string[];
  omitted: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PLACEHOLDER = "<!--machine-view-->";

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);

export function createMachineRouter(deps: MachineViewDeps): Router {
  const router = Router();
  const frame = path.join(deps.distDir ?? UI_DIST, "machine.html");

  /** The batch named by `?batch=`, or undefined when none is asked for; unknown ids are a 404. */
  async function standing(req: Request, res: Response): Promise<BatchStanding | undefined> {
    const id = typeof req.query.batch === "string" ? req.query.batch.trim() : "";
    if (!id) return undefined;
    const principal = principalOf(res);
    if (!principal) throw new UnauthorizedError("Sign in (open the web UI and give your API key) to see a batch in the machine");
    if (!UUID.test(id)) throw new NotFoundError("Batch", id);
    const batch = await deps.getBatch(id);
    const scope = tenantScope(principal);
    if (scope !== undefined && batch.tenant !== scope) throw new NotFoundError("Batch", id);
    const path = await deps.getPath(id);
    const state = batch.substate ? `${batch.status}.${batch.substate}` : batch.status;
    return { id, name: batch.name, state, allowed: batch.allowed_actions, path: path.states, omitted: path.omitted };
  }

  const optionsFor = (b: BatchStanding | undefined): DiagramOptions => (b ? { highlight: b.state, allowed: b.allowed, path: b.path } : {});

  router.get("/diagram.mmd", async (req, res) => {
    res.type("text/plain; charset=utf-8").send(toMermaid(optionsFor(await standing(req, res))));
  });

  router.get("/", async (req, res) => {
    let batch: BatchStanding | undefined;
    let missing: AppError | undefined;
    try {
      batch = await standing(req, res);
    } catch (err) {
      if (!(err instanceof NotFoundError || err instanceof UnauthorizedError)) throw err;
      missing = err;
    }
    const html = page(toMermaid(optionsFor(batch)), batch, missing?.message);
    const shell = existsSync(frame) ? readFileSync(frame, "utf8") : undefined;
    res
      .status(missing ? missing.status : 200)
      .type("html")
      .send(shell?.includes(PLACEHOLDER) ? shell.replace(PLACEHOLDER, () => html) : bare(html));
  });

  return router;
}

function page(diagram: string, batch: BatchStanding | undefined, missing: string | undefined): string {
  const list = (items: string[], cls: string, empty: string) =>
    items.length ? `<ul class="${cls}">${items.map((i) => `<li>${escapeHtml(i)}</li>`).join("")}</ul>` : `<p class="muted">${empty}</p>`;
  const about = batch
    ? `<section class="card machine-batch" data-batch-id="${escapeHtml(batch.id)}">
  <h2>Batch <a href="/batches/${escapeHtml(batch.id)}">${escapeHtml(batch.name ?? batch.id)}</a></h2>
  <p>Current state: <span class="badge state-${escapeHtml(batch.state.split(".")[0]?.toLowerCase() ?? "")}" data-testid="current-state">${escapeHtml(batch.state)}</span></p>
  <h3>Allowed actions</h3>
  ${list(batch.allowed, "pill-list allowed-actions", "None: the batch waits for its workers.")}
  <h3>Path through its history</h3>
  ${batch.omitted ? `<p class="muted small" data-testid="path-omitted">${batch.omitted} earlier steps not shown.</p>` : ""}
  ${batch.path.length ? `<ol class="state-path">${batch.path.map((s) => `<li>${escapeHtml(s)}</li>`).join("")}</ol>` : `<p class="muted">No accepted transitions yet.</p>`}
</section>`
    : "";
  const legend = batch
    ? `<p class="legend small"><span class="key key-current"></span> current state <span class="key key-visited"></span> visited <span class="key key-next"></span> reachable by an allowed action</p>`
    : "";
  return `<header class="topbar"><a href="/" class="brand">Tranche</a><nav><a href="/" class="nav-link">Batches</a><a href="/new" class="nav-link">New batch</a><a href="/queue" class="nav-link">Queue</a><a href="/machine" class="nav-link active">Machine</a></nav></header>
<main class="page machine-page">
<div class="page-head"><h1>The batch machine</h1><a class="small" href="/machine/diagram.mmd${batch ? `?batch=${escapeHtml(batch.id)}` : ""}">Mermaid source</a></div>
<p class="muted">Drawn from the machine's own definition (<code>batchMachine</code>): user actions are lower-case, worker and system events upper-case, guards in brackets. Reports that keep a batch in its state are left out. Click the drawing to see it at full size.</p>
${missing ? `<div class="notice notice-error" role="alert"><strong>${escapeHtml(missing)}</strong><div>Showing the machine alone.</div></div>` : ""}
${about}
${legend}
<div class="card diagram" id="diagram"><pre class="mermaid-source">${escapeHtml(diagram)}</pre></div>
</main>`;
}

/** Without the UI bundle the page still shows everything, with the diagram as text. */
function bare(body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tranche — the batch machine</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}pre{background:#f6f7f9;padding:1rem;overflow:auto}</style></head>
<body>${body}
<p><em>The web UI is not built (<code>npm run ui:build</code>), so the diagram is shown as its Mermaid text.</em></p></body></html>`;
}
