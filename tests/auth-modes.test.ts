// The three modes and the headers: no ADMIN_API_KEY on a loopback HOST is the local single user (no key asked, as before), ADMIN_API_KEY turns keys on, a non-loopback HOST needs one or AUTH=off; every answer carries helmet's security headers, and CORS answers only the origins in CORS_ORIGINS.
import request from "supertest";
import { isLoopback, resolveAuthMode } from "../src/auth/mode";
import { ConfigError, loadConfig } from "../src/config";
import { createApp } from "../src/server/app";
import { createHarness, testConfig, testLogger, type Harness } from "./support/harness";

const LONG_KEY = "k".repeat(32);

test.each([
  ["127.0.0.1", true],
  ["127.10.0.5", true],
  ["localhost", true],
  ["::1", true],
  ["[::1]", true],
  ["::ffff:127.0.0.1", true],
  ["0.0.0.0", false],
  ["::", false],
  ["192.168.1.20", false],
  ["tranche.example.com", false],
])("isLoopback(%s) is %s", (host, expected) => {
  expect(isLoopback(host)).toBe(expected);
});

test.each([
  [{ HOST: "127.0.0.1" }, "local"],
  [{ HOST: "127.0.0.1", ADMIN_API_KEY: LONG_KEY }, "keys"],
  [{ HOST: "0.0.0.0", ADMIN_API_KEY: LONG_KEY }, "keys"],
  [{ HOST: "0.0.0.0", AUTH: "off" }, "off"],
  [{ HOST: "127.0.0.1", AUTH: "off", ADMIN_API_KEY: LONG_KEY }, "off"],
])("%o runs in mode %s", (env, kind) => {
  expect(resolveAuthMode(loadConfig(env)).kind).toBe(kind);
});

test("a non-loopback HOST without ADMIN_API_KEY is a configuration error that says what to do", () => {
  expect(() => resolveAuthMode(loadConfig({ HOST: "0.0.0.0" }))).toThrow(ConfigError);
  expect(() => resolveAuthMode(loadConfig({ HOST: "0.0.0.0" }))).toThrow(/Set ADMIN_API_KEY .* or set AUTH=off/);
  expect(() => loadConfig({ ADMIN_API_KEY: "too short" })).toThrow(/ADMIN_API_KEY: must be at least 32 characters/);
  expect(() => loadConfig({ CORS_ORIGINS: "not a url" })).toThrow(/CORS_ORIGINS/);
});

describe("over HTTP", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(() => h.close());

  test("the local default asks for no key and records no actor", async () => {
    const created = await request(h.app)
      .post("/api/batches/save")
      .send({ name: "local", analysis: { instructions: "Summarise." }, documents: [{ name: "a.txt", content: "text" }] })
      .expect(201);
    expect(created.body.batch.tenant).toBe("default");
    const history = await request(h.app).get(`/api/batches/${created.body.batch.id}/history`).expect(200);
    expect(history.body.history[0]).toMatchObject({ event_type: "created", actor: null });
    const session = await request(h.app).get("/api/session").expect(200);
    expect(session.body).toMatchObject({ authentication: "off", key: { role: "admin", tenant: "default" } });
  });

  test("security headers on every answer, with a CSP that loads scripts only from this server", async () => {
    const res = await request(h.app).get("/api/health").expect(200);
    const csp = res.headers["content-security-policy"] as string;
    expect(csp).toMatch(/default-src 'self'/);
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(csp).toMatch(/frame-ancestors 'none'/);
    expect(csp).not.toMatch(/upgrade-insecure-requests/);
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.headers["x-frame-options"]).toBe("SAMEORIGIN");
  });

  test("CORS is off unless CORS_ORIGINS names the origin", async () => {
    const off = await request(h.app).options("/api/batches").set("origin", "https://ui.example.com").set("access-control-request-method", "POST");
    expect(off.headers["access-control-allow-origin"]).toBeUndefined();
    const app = createApp({ ...h.engine, config: testConfig, logger: testLogger, bodyLimit: "1mb", corsOrigins: ["https://ui.example.com"] });
    const allowed = await request(app)
      .options("/api/batches")
      .set("origin", "https://ui.example.com")
      .set("access-control-request-method", "POST")
      .set("access-control-request-headers", "authorization, content-type");
    expect(allowed.status).toBe(204);
    expect(allowed.headers["access-control-allow-origin"]).toBe("https://ui.example.com");
    expect(allowed.headers["access-control-allow-headers"]).toMatch(/Authorization/);
    const other = await request(app).get("/api/health").set("origin", "https://evil.example.com");
    expect(other.headers["access-control-allow-origin"]).toBeUndefined();
  });
});
