import { afterEach, describe, expect, it } from "vitest";
import { call, createAdmin, signIn } from "../../test-support/admin-identities.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { frozenClock } from "../clock.js";
import { createLogger } from "../ops/logger.js";
import { createSignInLimiter } from "./sign-in-limiter.js";

/** Console sessions: cookie flags, CSRF, expiry, sign-out, revocation, and secrets shown once. */

let kw: TestServer | undefined;
afterEach(async () => {
  await kw?.close();
  kw = undefined;
});

const withSession = (s: { cookie: string }, more: Record<string, string> = {}) => ({ cookie: s.cookie, ...more });

describe("console sessions", () => {
  it("the cookie is opaque, HttpOnly, SameSite=Strict, Path=/; Secure only behind a trusted HTTPS proxy", async () => {
    kw = await startTestServer({ KEYWARD_TRUSTED_PROXIES: "127.0.0.1" });
    const plain = await signIn(kw.url, kw.adminToken);
    expect(plain.setCookie).toMatch(
      /^keyward_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/,
    );
    expect(plain.setCookie).not.toContain(kw.adminToken);
    const proxied = await signIn(kw.url, kw.adminToken, { "x-forwarded-proto": "https" });
    expect(proxied.setCookie).toMatch(/; Secure$/);
    await kw.close();
    // The same header from a peer that is not a trusted proxy proves nothing.
    kw = await startTestServer();
    expect((await signIn(kw.url, kw.adminToken, { "x-forwarded-proto": "https" })).setCookie).not.toContain("Secure");
  });

  it("a session reads without a CSRF token; a change needs it, from the same origin; a Bearer request does not", async () => {
    kw = await startTestServer();
    const viewer = await createAdmin(kw, "eyes", "viewer");
    const operator = await createAdmin(kw, "hands", "operator");
    const v = await signIn(kw.url, viewer.secret);
    expect((await call(kw.url, "GET", "/admin/v1/consumers", { headers: withSession(v) })).status).toBe(200);

    // A viewer's forged change: valid session, no CSRF token (or a wrong one) → 403, nothing made.
    const forged = await call(kw.url, "POST", "/admin/v1/consumers", {
      body: { name: "forged" },
      headers: withSession(v),
    });
    expect(forged.status).toBe(403);
    expect(forged.body.error.code).toBe("forbidden");
    const wrong = await call(kw.url, "POST", "/admin/v1/consumers", {
      body: { name: "forged" },
      headers: withSession(v, { "x-csrf-token": "A".repeat(43) }),
    });
    expect(wrong.status).toBe(403);
    // With its CSRF token the viewer is still a viewer.
    const asViewer = await call(kw.url, "POST", "/admin/v1/consumers", {
      body: { name: "forged" },
      headers: withSession(v, { "x-csrf-token": v.csrf }),
    });
    expect(asViewer.status).toBe(403);
    expect((await kw.admin("GET", "/consumers/forged")).status).toBe(404);

    const o = await signIn(kw.url, operator.secret);
    // Another session's CSRF token does not fit this one.
    const swapped = withSession(o, { "x-csrf-token": v.csrf });
    expect((await call(kw.url, "POST", "/admin/v1/consumers", { body: { name: "x1" }, headers: swapped })).status).toBe(
      403,
    );
    const origin = new URL(kw.url).origin;
    const crossSite = withSession(o, { "x-csrf-token": o.csrf, origin: "https://evil.example" });
    expect(
      (await call(kw.url, "POST", "/admin/v1/consumers", { body: { name: "x2" }, headers: crossSite })).status,
    ).toBe(403);
    const sameSite = withSession(o, { "x-csrf-token": o.csrf, origin });
    const made = await call(kw.url, "POST", "/admin/v1/consumers", { body: { name: "x3" }, headers: sameSite });
    expect(made.status).toBe(201);
    const audit = await kw.admin("GET", "/audit?action=consumer.create&principal=consumer:x3");
    expect(audit.body.events[0].actor).toBe(`admin:${operator.id}`);

    const bearer = await call(kw.url, "POST", "/admin/v1/consumers", { bearer: operator.secret, body: { name: "x4" } });
    expect(bearer.status).toBe(201);
  });

  it("idle and absolute expiry (injected clock) and sign-out end a session: 401", async () => {
    const clock = frozenClock(Date.UTC(2026, 5, 1));
    kw = await startTestServer({}, { clock });
    const get = (s: { cookie: string }) => call(kw?.url ?? "", "GET", "/admin/v1/agents", { headers: withSession(s) });

    const idle = await signIn(kw.url, kw.adminToken);
    clock.advance(29 * 60_000);
    expect((await get(idle)).status).toBe(200); // used within 30 min: still alive, and its idle clock restarts
    clock.advance(29 * 60_000);
    expect((await get(idle)).status).toBe(200);
    clock.advance(30 * 60_000 + 1);
    const expired = await get(idle);
    expect(expired.status).toBe(401);
    expect(expired.body.error.code).toBe("unauthorized");

    const busy = await signIn(kw.url, kw.adminToken);
    for (let h = 0; h < 12 * 3 - 1; h++) {
      clock.advance(20 * 60_000);
      expect((await get(busy)).status).toBe(200);
    }
    clock.advance(20 * 60_000); // 12 h after sign-in, however busy
    expect((await get(busy)).status).toBe(401);

    const s = await signIn(kw.url, kw.adminToken);
    const out = await call(kw.url, "DELETE", "/admin/v1/sessions/current", {
      headers: withSession(s, { "x-csrf-token": s.csrf }),
    });
    expect(out.status).toBe(204);
    expect(out.headers.get("set-cookie")).toMatch(/^keyward_session=; .*Max-Age=0/);
    expect((await get(s)).status).toBe(401);
  });

  it("revoking an admin token ends its sessions at their next request", async () => {
    kw = await startTestServer();
    const operator = await createAdmin(kw, "hands", "operator");
    const s = await signIn(kw.url, operator.secret);
    expect((await call(kw.url, "GET", "/admin/v1/keys?owner=consumer:x", { headers: withSession(s) })).status).toBe(
      200,
    );
    expect((await kw.admin("POST", `/admin-tokens/${operator.id}/revoke`)).status).toBe(200);
    expect((await call(kw.url, "GET", "/admin/v1/agents", { headers: withSession(s) })).status).toBe(401);
    expect((await call(kw.url, "GET", "/admin/v1/agents", { bearer: operator.secret })).status).toBe(401);
    const again = await call(kw.url, "POST", "/admin/v1/sessions", { body: { token: operator.secret } });
    expect(again.status).toBe(401);
  });

  it("a token over the length bound is refused before any lookup: 400 at sign-in, 401 as Bearer", async () => {
    kw = await startTestServer();
    const long = `kwa_${"x".repeat(600)}`;
    expect((await call(kw.url, "POST", "/admin/v1/sessions", { body: { token: long } })).status).toBe(400);
    expect((await call(kw.url, "GET", "/admin/v1/agents", { bearer: long })).status).toBe(401);
    const garbage = await call(kw.url, "GET", "/admin/v1/agents", { headers: { cookie: "keyward_session=%00;;=" } });
    expect(garbage.status).toBe(401);
  });

  it("an admin token's secret is shown once: never in the list, the audit log or the logs", async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: "trace", destination: { write: (l: string) => lines.push(l) } });
    kw = await startTestServer({}, { logger });
    const made = await createAdmin(kw, "shown-once", "operator");
    const s = await signIn(kw.url, made.secret);
    await call(kw.url, "POST", "/admin/v1/admin-tokens", { headers: withSession(s, { "x-csrf-token": s.csrf }) });
    const list = await kw.admin("GET", "/admin-tokens");
    const audit = await kw.admin("GET", "/audit?limit=1000");
    const seen = JSON.stringify([list.body, audit.body]) + lines.join("\n");
    expect(list.body.items.find((t: { id: string }) => t.id === made.id)).toEqual({
      id: made.id,
      name: "shown-once",
      role: "operator",
      status: "active",
      created_at: expect.any(String),
      revoked_at: null,
    });
    expect(lines.length).toBeGreaterThan(0);
    for (const secret of [made.secret, made.secret.slice(4), s.csrf, s.cookie.split("=")[1] ?? "x"]) {
      expect(seen).not.toContain(secret);
    }
  });

  it("sign-in attempts are bounded per address and in all; the address table is capped", async () => {
    kw = await startTestServer();
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      statuses.push((await call(kw.url, "POST", "/admin/v1/sessions", { body: { token: "kwa_guess" } })).status);
    }
    expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
    expect(statuses[10]).toBe(429);
    // The right token is refused too while the address is over its bound: guessing gains nothing.
    expect((await call(kw.url, "POST", "/admin/v1/sessions", { body: { token: kw.adminToken } })).status).toBe(429);

    const limiter = createSignInLimiter({ perAddressPerMinute: 2, totalPerMinute: 5, maxAddresses: 3 });
    const now = Date.UTC(2026, 0, 1);
    const allowed = ["a", "b", "c", "d", "e", "f"].map((ip) => limiter.allow(ip, now));
    expect(allowed).toEqual([true, true, true, true, true, false]); // the sixth is over the total
    expect(limiter.size()).toBe(3);
    expect(limiter.allow("a", now + 60_000)).toBe(true); // a new minute
  });
});
