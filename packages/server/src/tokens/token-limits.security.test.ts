import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { startUpstream } from "../../test-support/upstream.js";
import { readJson, type TokenEndpointBody } from "../../test-support/wire.js";
import { frozenClock } from "../clock.js";
import { DEFAULT_MAX_REFRESH_FAMILIES } from "./tokens-service.js";

/**
 * Issue 18, finding 8c: minting tokens counts against the key's rate limit (the gateway's own
 * bucket), and the live refresh-token families of one key are capped.
 */
// 20 s into a minute: a 60 s window has 40 s left, whatever the wall clock says.
const T0 = Date.UTC(2030, 0, 1, 0, 0, 20);
const clock = frozenClock(T0);
let kw: TestServer;
let up: Awaited<ReturnType<typeof startUpstream>>;

async function key(extra: Record<string, unknown> = {}): Promise<{ id: string; secret: string }> {
  const r = await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:echo"], ...extra });
  expect(r.status).toBe(201);
  return { id: r.body.key.id, secret: r.body.secret };
}

async function post(path: string, body: string, type: string) {
  const res = await fetch(`${kw.url}${path}`, { method: "POST", headers: { "content-type": type }, body });
  return { status: res.status, headers: res.headers, body: await readJson<TokenEndpointBody>(res) };
}
const authToken = (apiKey: string) => post("/v1/auth/token", JSON.stringify({ api_key: apiKey }), "application/json");
const form = (params: Record<string, string>) =>
  post("/oauth/token", new URLSearchParams(params).toString(), "application/x-www-form-urlencoded");

beforeAll(async () => {
  up = await startUpstream();
  kw = await startTestServer({}, { clock });
  expect((await kw.admin("POST", "/agents", { name: "echo", upstream: up.url })).status).toBe(201);
  expect((await kw.admin("POST", "/consumers", { name: "acme" })).status).toBe(201);
});
afterAll(async () => {
  await kw?.close();
  await up?.close();
});

describe("minting counts against the key's rate limit", () => {
  it("refuses the mint past the limit with 429 invalid_request and Retry-After, at every grant, and shares the gateway's budget", async () => {
    const k = await key({ rate_limit: { limit: 3, window_s: 60 } });
    const first = await authToken(k.secret);
    expect(first.status).toBe(200);
    expect((await form({ grant_type: "client_credentials", client_id: k.id, client_secret: k.secret })).status).toBe(
      200,
    );
    const gw = await fetch(`${kw.url}/agents/echo/x`, { headers: { authorization: `Bearer ${k.secret}` } });
    expect(gw.status).toBe(200); // the third of 3 in this window
    await gw.arrayBuffer();

    const refusals = [
      await authToken(k.secret),
      await form({ grant_type: "client_credentials", client_id: k.id, client_secret: k.secret }),
      await form({ grant_type: "refresh_token", refresh_token: first.body.refresh_token }),
    ];
    for (const r of refusals) {
      expect(r.status).toBe(429);
      expect(r.body).toEqual({ error: "invalid_request", error_description: "rate limit exceeded" });
      expect(r.headers.get("retry-after")).toBe("40");
      expect(r.headers.get("ratelimit-limit")).toBe("3");
      expect(r.headers.get("ratelimit-remaining")).toBe("0");
      expect(r.headers.get("cache-control")).toBe("no-store");
    }
    // Minting used the gateway's bucket: the gateway refuses too.
    const limited = await fetch(`${kw.url}/agents/echo/x`, { headers: { authorization: `Bearer ${k.secret}` } });
    expect(limited.status).toBe(429);
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe("rate_limited");

    // The refused refresh spent nothing: in the next window the same refresh token works.
    clock.advance(40_000);
    const refreshed = await form({ grant_type: "refresh_token", refresh_token: first.body.refresh_token });
    expect(refreshed.status).toBe(200);
  });

  it("leaves keys without a rate limit unlimited", async () => {
    const k = await key();
    for (let i = 0; i < 10; i++) expect((await authToken(k.secret)).status).toBe(200);
  });
});

describe("refresh-token families per key are capped", () => {
  it(`keeps at most ${DEFAULT_MAX_REFRESH_FAMILIES} live families: the least recently used is revoked`, async () => {
    const k = await key();
    const oldest = await authToken(k.secret);
    clock.advance(1);
    const next = await authToken(k.secret);
    clock.advance(1);
    // Refreshing `oldest` makes it the most recently used family; `next` is now the oldest.
    const rotated = await form({ grant_type: "refresh_token", refresh_token: oldest.body.refresh_token });
    expect(rotated.status).toBe(200);
    clock.advance(1);
    // 2 live families so far; DEFAULT - 2 more reach the cap, one more goes beyond it.
    const extra = DEFAULT_MAX_REFRESH_FAMILIES - 1;
    for (let done = 0; done < extra; ) {
      const batch = Math.min(25, extra - done);
      const answers = await Promise.all(Array.from({ length: batch }, () => authToken(k.secret)));
      for (const a of answers) expect(a.status).toBe(200);
      done += batch;
    }
    const revoked = await form({ grant_type: "refresh_token", refresh_token: next.body.refresh_token });
    expect(revoked.status).toBe(400);
    expect(revoked.body.error).toBe("invalid_grant");
    const kept = await form({ grant_type: "refresh_token", refresh_token: rotated.body.refresh_token });
    expect(kept.status).toBe(200);
  });
});
