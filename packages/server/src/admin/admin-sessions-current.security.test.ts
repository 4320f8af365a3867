import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { type Answer, call, createAdmin, signIn } from "../../test-support/admin-identities.js";
import { type Place, placeEngines } from "../../test-support/database-places.js";
import { startTestServer, TEST_MASTER_KEY, type TestServer } from "../../test-support/server.js";
import { frozenClock, systemClock } from "../clock.js";
import { openIntegrity } from "../crypto/integrity-root.js";
import { createKeyring } from "../crypto/keyring.js";
import { hashSecret } from "../crypto/secret-format.js";

/**
 * GET /admin/v1/sessions/current: how a reloaded console learns who it is and its CSRF token again
 * (issue 15). The CSRF token is handed out on a GET, so the answer must be readable by the
 * console's own origin only (no CORS headers, ever) and never cached.
 */

let kw: TestServer | undefined;
afterEach(async () => {
  await kw?.close();
  kw = undefined;
});

const current = (url: string, headers: Record<string, string>, bearer?: string) =>
  call(url, "GET", "/admin/v1/sessions/current", { headers, ...(bearer ? { bearer } : {}) });

function expectError(res: Answer, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.body).toEqual({ error: { code, message: expect.any(String), request_id: expect.any(String) } });
}

describe("the current console session", () => {
  it("answers the session's identity, expiry and CSRF token, not cached, and the token works for a change", async () => {
    kw = await startTestServer();
    const operator = await createAdmin(kw, "hands", "operator");
    const s = await signIn(kw.url, operator.secret);
    const signInBody = (await call(kw.url, "POST", "/admin/v1/sessions", { body: { token: operator.secret } })).body;
    expect(signInBody.admin_token).toEqual({ id: operator.id, name: "hands", role: "operator" });

    const res = await current(kw.url, { cookie: s.cookie });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.body).toEqual({
      admin_token: { id: operator.id, name: "hands", role: "operator" },
      csrf_token: s.csrf,
      expires_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      idle_timeout_s: 1800,
    });
    expect(JSON.stringify(res.body)).not.toContain(operator.secret);
    expect(JSON.stringify(res.body)).not.toContain(s.cookie.split("=")[1]);
    // Asked again (a second tab, a second reload): the same token, so no other tab loses its own.
    expect((await current(kw.url, { cookie: s.cookie })).body.csrf_token).toBe(s.csrf);

    // What a reloaded console does next: a change with the token it was just given.
    const made = await call(kw.url, "POST", "/admin/v1/consumers", {
      body: { name: "after-reload" },
      headers: { cookie: s.cookie, "x-csrf-token": res.body.csrf_token, origin: new URL(kw.url).origin },
    });
    expect(made.status).toBe(201);
  });

  it("sends no CORS headers, whatever the Origin, so a cross-origin page cannot read the token", async () => {
    kw = await startTestServer();
    const s = await signIn(kw.url, kw.adminToken);
    const evil = { cookie: s.cookie, origin: "https://evil.example" };
    const res = await current(kw.url, evil);
    const preflight = await fetch(`${kw.url}/admin/v1/sessions/current`, {
      method: "OPTIONS",
      headers: { ...evil, "access-control-request-method": "GET" },
    });
    for (const headers of [res.headers, preflight.headers]) {
      expect([...headers.keys()].filter((h) => h.startsWith("access-control-"))).toEqual([]);
    }
  });

  it("401 without a live session, 404 not_found for a Bearer request (it has no session)", async () => {
    kw = await startTestServer();
    const url = kw.url;
    expectError(await current(url, {}), 401, "unauthorized");
    expectError(await current(url, { cookie: "keyward_session=%00;;=" }), 401, "unauthorized");
    expectError(await current(url, { cookie: `keyward_session=${"A".repeat(43)}` }), 401, "unauthorized");
    expectError(await current(url, {}, "kwa_wrong"), 401, "unauthorized");
    const bearer = await current(url, {}, kw.adminToken);
    expectError(bearer, 404, "not_found");
    expect(bearer.body.error.message).toContain("Authorization");

    const s = await signIn(url, kw.adminToken);
    // The Authorization header decides, as on every admin route: a cookie beside it is not read.
    expectError(await current(url, { cookie: s.cookie }, kw.adminToken), 404, "not_found");
    const out = await call(url, "DELETE", "/admin/v1/sessions/current", {
      headers: { cookie: s.cookie, "x-csrf-token": s.csrf },
    });
    expect(out.status).toBe(204);
    const after = await current(url, { cookie: s.cookie });
    expectError(after, 401, "unauthorized");
    expect(JSON.stringify(after.body)).not.toContain(s.csrf);
  });

  it("every role may read its own session", async () => {
    kw = await startTestServer();
    for (const role of ["viewer", "auditor"]) {
      const made = await createAdmin(kw, `r-${role}`, role);
      const s = await signIn(kw.url, made.secret);
      const res = await current(kw.url, { cookie: s.cookie });
      expect(res.status).toBe(200);
      expect(res.body.admin_token).toEqual({ id: made.id, name: `r-${role}`, role });
    }
  });

  it("counts as activity: a console that only reloads keeps its session past the idle timeout", async () => {
    const clock = frozenClock(Date.UTC(2026, 5, 1));
    kw = await startTestServer({}, { clock });
    const s = await signIn(kw.url, kw.adminToken);
    clock.advance(29 * 60_000);
    expect((await current(kw.url, { cookie: s.cookie })).status).toBe(200);
    clock.advance(29 * 60_000); // 58 min after sign-in, 29 after the last read
    expect((await current(kw.url, { cookie: s.cookie })).status).toBe(200);
    clock.advance(30 * 60_000 + 1);
    expectError(await current(kw.url, { cookie: s.cookie }), 401, "unauthorized");
  });
});

describe.each(placeEngines("current session upgrade"))(
  "a session begun by an older version on $name",
  ({ skip, place }) => {
    let p: Place | undefined;
    afterEach(async () => {
      await kw?.close();
      kw = undefined;
      await p?.cleanup();
    });

    it.skipIf(skip)("its random CSRF token cannot be read back: it is given the derived one", async () => {
      p = place();
      kw = await p.start();
      const s = await signIn(kw.url, kw.adminToken);
      await kw.close();
      kw = undefined;
      // What the previous version stored: the keyed hash of a random CSRF token.
      const old = randomBytes(32).toString("base64url");
      await p.sql(async (db) => {
        const integrity = await openIntegrity({
          db,
          keyring: createKeyring({ active: Buffer.from(TEST_MASTER_KEY, "base64") }),
          clock: systemClock,
        });
        await db.exec("UPDATE admin_sessions SET csrf_hash = $1", [hashSecret(old, integrity.keys)]);
      });
      kw = await p.start();
      const origin = new URL(kw.url).origin;
      const change = (csrf: string, name: string) =>
        call(kw?.url ?? "", "POST", "/admin/v1/consumers", {
          body: { name },
          headers: { cookie: s.cookie, "x-csrf-token": csrf, origin },
        });
      expect((await change(old, "before")).status).toBe(201); // the old tab still works until a reload

      const res = await current(kw.url, { cookie: s.cookie });
      expect(res.status).toBe(200);
      expect(res.body.csrf_token).not.toBe(old);
      expect((await change(res.body.csrf_token, "reloaded")).status).toBe(201);
      expect((await change(old, "stale")).status).toBe(403);
    });
  },
);
