import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { frozenClock } from "../clock.js";

// A retired key (rotated or revoked) must never become usable again, whatever an admin PATCHes.
const clock = frozenClock(Date.now());
let kw: TestServer;

async function newKey(): Promise<{ id: string; secret: string }> {
  const r = await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:echo"] });
  expect(r.status).toBe(201);
  return { id: r.body.key.id, secret: r.body.secret };
}

/** The gateway's verdict on a key (the agent's upstream is never reached in these tests). */
async function verdict(secret: string): Promise<string> {
  const res = await fetch(`${kw.url}/agents/echo/x`, { headers: { "x-api-key": secret } });
  if (res.status < 400) return String(res.status);
  return ((await res.json()) as { error: { code: string } }).error.code;
}

async function expectConflict(r: { status: number; body: { error?: { code: string; request_id: string } } }) {
  expect(r.status).toBe(409);
  expect(r.body.error?.code).toBe("conflict");
  expect(typeof r.body.error?.request_id).toBe("string");
}

const iso = (ms: number) => new Date(ms).toISOString();

beforeAll(async () => {
  kw = await startTestServer({}, { clock });
  // An upstream nobody listens on: a key that gets through answers 502, which is not a denial.
  expect((await kw.admin("POST", "/agents", { name: "echo", upstream: "http://127.0.0.1:9" })).status).toBe(201);
  expect((await kw.admin("POST", "/consumers", { name: "acme" })).status).toBe(201);
});
afterAll(async () => {
  await kw?.close();
});

describe("a rotated key stays retired", () => {
  it("refuses PATCH expires_at: null; the old key fails with key_expired after the grace", async () => {
    const k = await newKey();
    const rotated = await kw.admin("POST", `/keys/${k.id}/rotate`, { grace_s: 60 });
    expect(rotated.status).toBe(201);
    const before = await kw.admin("GET", `/keys/${k.id}`);

    await expectConflict(await kw.admin("PATCH", `/keys/${k.id}`, { expires_at: null }));
    expect(await kw.admin("GET", `/keys/${k.id}`)).toEqual(before);

    expect(await verdict(k.secret)).toBe("upstream_unavailable"); // still inside the grace
    clock.advance(61_000);
    expect(await verdict(k.secret)).toBe("key_expired");
    expect(await verdict(rotated.body.secret)).toBe("upstream_unavailable");
  });

  it("refuses every extension of the grace, and every other field, leaving the row unchanged", async () => {
    const k = await newKey();
    expect((await kw.admin("POST", `/keys/${k.id}/rotate`, { grace_s: 600 })).status).toBe(201);
    const before = await kw.admin("GET", `/keys/${k.id}`);
    const graceEnd = Date.parse(before.body.expires_at);

    for (const body of [
      { expires_at: null },
      { expires_at: iso(graceEnd + 1000) },
      { expires_in: 3600 },
      { expires_at: iso(graceEnd - 1000), scopes: ["agent:*"] },
      { scopes: ["agent:*"] },
      { rate_limit: null },
      { ip_allow: ["0.0.0.0/0"] },
      { name: "revived" },
      {},
    ]) {
      await expectConflict(await kw.admin("PATCH", `/keys/${k.id}`, body));
    }
    await expectConflict(await kw.admin("POST", `/keys/${k.id}/freeze`));
    await expectConflict(await kw.admin("POST", `/keys/${k.id}/unfreeze`));
    expect(await kw.admin("GET", `/keys/${k.id}`)).toEqual(before);
  });

  it("accepts a shorter grace, and revoke", async () => {
    const k = await newKey();
    expect((await kw.admin("POST", `/keys/${k.id}/rotate`, { grace_s: 600 })).status).toBe(201);
    const shorter = iso(clock.now() + 10_000);
    const r = await kw.admin("PATCH", `/keys/${k.id}`, { expires_at: shorter });
    expect(r.status).toBe(200);
    expect(r.body.expires_at).toBe(shorter);
    clock.advance(11_000);
    expect(await verdict(k.secret)).toBe("key_expired");

    const j = await newKey();
    expect((await kw.admin("POST", `/keys/${j.id}/rotate`, { grace_s: 600 })).status).toBe(201);
    expect((await kw.admin("POST", `/keys/${j.id}/revoke`)).status).toBe(200);
    expect(await verdict(j.secret)).toBe("key_revoked");
  });
});

describe("a revoked key stays revoked", () => {
  it("refuses PATCH, freeze, unfreeze and rotate, leaving the row unchanged", async () => {
    const k = await newKey();
    expect((await kw.admin("POST", `/keys/${k.id}/revoke`)).status).toBe(200);
    const before = await kw.admin("GET", `/keys/${k.id}`);

    await expectConflict(await kw.admin("PATCH", `/keys/${k.id}`, { expires_at: null }));
    await expectConflict(await kw.admin("PATCH", `/keys/${k.id}`, { scopes: ["agent:*"] }));
    await expectConflict(await kw.admin("POST", `/keys/${k.id}/freeze`));
    await expectConflict(await kw.admin("POST", `/keys/${k.id}/unfreeze`));
    await expectConflict(await kw.admin("POST", `/keys/${k.id}/rotate`, {}));
    expect(await kw.admin("GET", `/keys/${k.id}`)).toEqual(before);
    expect(await verdict(k.secret)).toBe("key_revoked");
  });
});

describe("live keys keep their transitions", () => {
  it("freeze ⇄ unfreeze and PATCH of an expired (not retired) key still work", async () => {
    const k = await newKey();
    expect((await kw.admin("POST", `/keys/${k.id}/freeze`)).status).toBe(200);
    expect(await verdict(k.secret)).toBe("key_frozen");
    await expectConflict(await kw.admin("POST", `/keys/${k.id}/rotate`, {}));
    expect((await kw.admin("POST", `/keys/${k.id}/unfreeze`)).status).toBe(200);
    expect((await kw.admin("PATCH", `/keys/${k.id}`, { expires_in: 5 })).status).toBe(200);
    clock.advance(6_000);
    expect(await verdict(k.secret)).toBe("key_expired");
    expect((await kw.admin("PATCH", `/keys/${k.id}`, { expires_at: null })).status).toBe(200);
    expect(await verdict(k.secret)).toBe("upstream_unavailable");
  });
});
