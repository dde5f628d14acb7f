// Authentication across real processes: `npm run keys` creates, lists and revokes keys from the shell; a key revoked in one API process is refused by a second one (`node --import tsx src/main.ts api`) within a second; a non-loopback HOST without ADMIN_API_KEY refuses to start and says why, and with AUTH=off starts and warns; the request limit is shared by two API processes through Redis and answers 429 rate_limited with Retry-After.
import { execFile } from "node:child_process";
import path from "node:path";
import request from "supertest";
import { ADMIN_KEY, createAuthSystem, spawnApi, type ApiProcess, type AuthSystem } from "./support/auth";

let s: AuthSystem;
const spawned: ApiProcess[] = [];

// Each test starts real processes, which take long to start on a busy machine.
jest.setTimeout(240_000);

beforeAll(async () => {
  s = await createAuthSystem();
});
afterAll(async () => {
  await Promise.all(spawned.map((p) => p.stop()));
  await s?.close();
});

async function start(env: Record<string, string>, options?: Parameters<typeof spawnApi>[1]) {
  const p = await spawnApi({ ...s.env, ...env }, options);
  spawned.push(p);
  return p;
}

const get = (url: string, key?: string) => fetch(url, { headers: key ? { authorization: `Bearer ${key}` } : {} });

test("a key revoked through one API process is refused by another within a second", async () => {
  const other = await start({});
  const made = await request(s.app).post("/api/keys").set("x-api-key", ADMIN_KEY).send({ name: "ci", role: "operator", tenant: "acme" }).expect(201);
  // The other process has looked the key up, so it holds it in its cache.
  expect((await get(`${other.url}/api/batches`, made.body.key)).status).toBe(200);
  expect((await get(`${other.url}/api/batches`, made.body.key)).status).toBe(200);

  await request(s.app).delete(`/api/keys/${made.body.id}`).set("x-api-key", ADMIN_KEY).expect(200);
  const revokedAt = Date.now();
  let status = 200;
  while (status !== 401 && Date.now() - revokedAt < 5000) {
    status = (await get(`${other.url}/api/batches`, made.body.key)).status;
  }
  const tookMs = Date.now() - revokedAt;
  expect(status).toBe(401);
  expect(tookMs).toBeLessThan(1000);
  // And it stays refused.
  expect((await get(`${other.url}/api/batches`, made.body.key)).status).toBe(401);
});

describe("exposed without keys", () => {
  test("a non-loopback HOST without ADMIN_API_KEY refuses to start and says why", async () => {
    const p = await start({ HOST: "0.0.0.0", ADMIN_API_KEY: "" }, { ready: false });
    const code = await p.exited;
    expect(code).not.toBe(0);
    expect(p.output()).toMatch(/HOST=0\.0\.0\.0 is reachable from other machines, but no ADMIN_API_KEY is set/);
    expect(p.output()).toMatch(/AUTH=off/);
    expect(p.output()).not.toMatch(/Tranche is listening/);
  });

  test("an ADMIN_API_KEY shorter than 32 characters is refused", async () => {
    const p = await start({ HOST: "0.0.0.0", ADMIN_API_KEY: "short" }, { ready: false });
    expect(await p.exited).not.toBe(0);
    expect(p.output()).toMatch(/ADMIN_API_KEY: must be at least 32 characters/);
  });

  test("with AUTH=off it starts and warns loudly, and nothing asks for a key", async () => {
    const p = await start({ HOST: "0.0.0.0", ADMIN_API_KEY: "", AUTH: "off" });
    expect(p.output()).toMatch(/WARNING: AUTH=off: authentication is disabled and Tranche listens on 0\.0\.0\.0/);
    expect(p.output()).toMatch(/"level":40/);
    expect((await get(`${p.url}/api/batches`)).status).toBe(200);
    await p.stop();
  });
});

test("the request limit is shared by two API processes and answers 429 rate_limited with Retry-After", async () => {
  const env = { RATE_LIMIT_PER_MINUTE: "5", QUEUE_PREFIX: `${s.prefix}rl` };
  const [one, two] = await Promise.all([start(env), start(env)]);
  const key = (await s.key("viewer", "acme")).key;
  const answers: number[] = [];
  for (const p of [one, two, one, two, one]) answers.push((await get(`${p!.url}/api/batches`, key)).status);
  expect(answers).toEqual([200, 200, 200, 200, 200]);
  const limited = await get(`${two!.url}/api/batches`, key);
  expect(limited.status).toBe(429);
  const retryAfter = Number(limited.headers.get("retry-after"));
  expect(retryAfter).toBeGreaterThan(0);
  expect(retryAfter).toBeLessThanOrEqual(60);
  const body = (await limited.json()) as { code: string; error: string };
  expect(body.code).toBe("rate_limited");
  expect(body.error).toMatch(/try again in \d+ s/);
  expect((await get(`${one!.url}/api/batches`, key)).status).toBe(429);
  // Another key has its own count.
  expect((await get(`${one!.url}/api/batches`, (await s.key("viewer", "acme")).key)).status).toBe(200);
});

/** `npm run keys -- <args>` (tsx as a loader, as npm would run it). */
function keysCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const root = path.join(__dirname, "..");
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", path.join(root, "src", "cli", "keys.ts"), ...args], { cwd: root, env: { ...process.env, ...s.env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test("npm run keys -- create / list / revoke", async () => {
  const created = await keysCli(["create", "--role", "operator", "--tenant", "acme", "--name", "ci"]);
  expect(created.code).toBe(0);
  const key = /^(trk_[0-9a-f]{16}_\S+)$/m.exec(created.stdout)?.[1];
  expect(key).toBeDefined();
  expect(created.stderr).toMatch(/only time the key is shown/);
  const id = key!.slice(4, 20);
  expect((await request(s.app).get("/api/batches").set("x-api-key", key!)).status).toBe(200);

  const listed = await keysCli(["list"]);
  expect(listed.code).toBe(0);
  expect(listed.stdout).toMatch(new RegExp(`${id}\\s+operator\\s+acme\\s+ci`));
  expect(listed.stdout).not.toContain(key!.slice(21));

  const revoked = await keysCli(["revoke", id]);
  expect([revoked.code, revoked.stdout.trim()]).toEqual([0, `revoked key ${id} "ci"`]);
  expect((await request(s.app).get("/api/batches").set("x-api-key", key!)).status).toBe(401);

  expect((await keysCli(["revoke", "0123456789abcdef"])).code).toBe(1);
  const bad = await keysCli(["create", "--role", "root", "--name", "x"]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/--role/);
});
