/**
 * The process scenarios of `npm run bench`: Tranche as it is deployed, in real child processes
 * (`node --import tsx src/main.ts all|api|worker`, as tests/support/system.ts spawns workers),
 * driven only through its HTTP API: documents added in JSON pages of 1,000, `stage`, then `run`,
 * with the batch read over HTTP every 100 ms. Each process's RSS is sampled from
 * /proc/<pid>/status (VmRSS) every 100 ms: the peaks are Tranche's own, not the bench's.
 *
 * Layouts: "all-in-one" (one process doing everything) and "1 api + 4 workers".
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";

const ROOT = path.join(__dirname, "..");

export interface Layout {
  label: string;
  /** The role of each process; the first one serves HTTP. */
  roles: ("all" | "api" | "worker")[];
}

export const LAYOUTS: Record<string, Layout> = {
  allInOne: { label: "all-in-one (1 process)", roles: ["all"] },
  split: { label: "1 api + 4 workers", roles: ["api", "worker", "worker", "worker", "worker"] },
};

export interface ProcessRun {
  layout: string;
  documents: number;
  /** Seconds to add the documents over HTTP (pages of 1,000). */
  addSeconds: number;
  stagingSeconds: number;
  stagingDocsPerSec: number;
  analysisSeconds: number;
  analysisDocsPerSec: number;
  /** RSS of the API process when it is up and idle, after the documents were added, and its peak. */
  apiRssAtRestMb: number;
  apiRssAfterAddMb: number;
  peakRssMb: Record<string, number>;
  /** Slowest `GET /api/batches/:id` while the batch ran (ms): how the API answers under load. */
  slowestBatchReadMs: number;
  status: string;
}

/** Resident set size of a process, in MB (0 once it is gone). */
export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : 0;
  } catch {
    return 0;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ProcessDeps {
  env: Record<string, string>;
  documents: (count: number, tag: string) => { name: string; content: string }[];
  analysis: Record<string, unknown>;
  count: number;
  waitLimitMs: number;
}

export async function runLayout(name: string, layout: Layout, deps: ProcessDeps, port: number): Promise<ProcessRun> {
  const children: { role: string; child: ChildProcess; label: string }[] = [];
  const peaks: Record<string, number> = {};
  const workerIndex = { n: 0 };
  for (const role of layout.roles) {
    const label = role === "worker" ? `worker#${++workerIndex.n}` : role;
    const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "src", "main.ts"), role], {
      cwd: ROOT,
      env: { ...process.env, ...deps.env, PORT: String(port), NODE_ENV: "production" },
      stdio: ["ignore", "ignore", "inherit"],
    });
    children.push({ role, child, label });
    peaks[label] = 0;
  }
  const sampler = setInterval(() => {
    for (const c of children) if (c.child.pid) peaks[c.label] = Math.max(peaks[c.label]!, rssMb(c.child.pid));
  }, 100);
  const api = `http://127.0.0.1:${port}/api`;
  const http = async <T>(method: string, route: string, body?: unknown): Promise<{ status: number; body: T; ms: number }> => {
    const t0 = performance.now();
    const res = await fetch(`${api}${route}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T, ms: performance.now() - t0 };
  };
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${api}/health`)).ok) break;
      } catch {
        // Not listening yet.
      }
      if (i > 600) throw new Error(`${layout.label}: the API did not come up`);
      await sleep(100);
    }
    await sleep(1000);
    const apiPid = children[0]!.child.pid!;
    const apiRssAtRestMb = rssMb(apiPid);

    const t0 = performance.now();
    const created = await http<{ batch: { id: string } }>("POST", "/batches/save", { name: `procs-${name}`, analysis: deps.analysis });
    const batchId = created.body.batch.id;
    for (let from = 0; from < deps.count; from += 1000) {
      const page = deps.documents(Math.min(1000, deps.count - from), `${name}-${from}`);
      const res = await http("POST", `/batches/${batchId}/documents`, { documents: page });
      if (res.status !== 201) throw new Error(`${layout.label}: adding documents answered ${res.status} ${JSON.stringify(res.body)}`);
    }
    const addSeconds = (performance.now() - t0) / 1000;
    const apiRssAfterAddMb = rssMb(apiPid);

    let slowest = 0;
    const reach = async (target: string) => {
      const deadline = Date.now() + deps.waitLimitMs;
      for (;;) {
        const res = await http<{ batch: { status: string } }>("GET", `/batches/${batchId}`);
        slowest = Math.max(slowest, res.ms);
        const status = res.body.batch.status;
        if (status === target) return status;
        if (["FAILED", "FAILED_STAGING", "CANCELLED"].includes(status) || Date.now() > deadline) return status;
        await sleep(100);
      }
    };
    const s0 = performance.now();
    await http("POST", `/batches/${batchId}/stage`, {});
    let status = await reach("STAGED");
    const stagingSeconds = (performance.now() - s0) / 1000;
    const a0 = performance.now();
    if (status === "STAGED") {
      await http("POST", `/batches/${batchId}/run`, {});
      status = await reach("COMPLETED");
    }
    const analysisSeconds = (performance.now() - a0) / 1000;
    return {
      layout: layout.label,
      documents: deps.count,
      addSeconds: round(addSeconds, 2),
      stagingSeconds: round(stagingSeconds, 2),
      stagingDocsPerSec: Math.round(deps.count / stagingSeconds),
      analysisSeconds: round(analysisSeconds, 2),
      analysisDocsPerSec: Math.round(deps.count / analysisSeconds),
      apiRssAtRestMb,
      apiRssAfterAddMb,
      peakRssMb: { ...peaks },
      slowestBatchReadMs: round(slowest, 1),
      status,
    };
  } finally {
    clearInterval(sampler);
    await Promise.all(
      children.map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
            child.once("exit", () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill("SIGTERM");
          }),
      ),
    );
  }
}

const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;
