import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { type SeenRequest, startUpstream } from "../../test-support/upstream.js";
import { type ApiErrorBody, readJson, type TokenEndpointBody } from "../../test-support/wire.js";

const TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";

let kw: TestServer;
let up: Awaited<ReturnType<typeof startUpstream>>;
const agentKeys: Record<string, string> = {};
let caller: { id: string; secret: string };

async function form(params: Record<string, string>) {
  const res = await fetch(`${kw.url}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(params).toString(),
  });
  return { status: res.status, body: await readJson<TokenEndpointBody>(res) };
}

/** The JWT the gateway forwards to `agent` for the caller: what W really holds. */
async function forwardedTo(agent: string, secret = caller.secret): Promise<string> {
  const res = await fetch(`${kw.url}/agents/${agent}/x`, { headers: { "x-api-key": secret } });
  expect(res.status).toBe(200);
  return ((await readJson<SeenRequest>(res)).headers.authorization as string).slice(7);
}

const exchange = (subject: string, actorAgent: string, audience: string, extra: Record<string, string> = {}) =>
  form({
    grant_type: EXCHANGE,
    subject_token: subject,
    subject_token_type: TOKEN_TYPE,
    actor_token: agentKeys[actorAgent] as string,
    actor_token_type: TOKEN_TYPE,
    audience,
    ...extra,
  });

beforeAll(async () => {
  up = await startUpstream();
  kw = await startTestServer({ KEYWARD_MAX_DELEGATION_DEPTH: "2" });
  for (const name of ["w", "d", "e", "f"]) {
    expect((await kw.admin("POST", "/agents", { name, upstream: up.url })).status).toBe(201);
    agentKeys[name] = (await kw.admin("POST", "/keys", { owner: `agent:${name}`, scopes: [] })).body.secret;
  }
  // w → d → e → f: each may call the next, and w may not call e directly.
  for (const [from, to] of [
    ["w", "d"],
    ["d", "e"],
    ["e", "f"],
  ] as const) {
    const g = await kw.admin("PUT", `/agents/${from}/grants`, { credentials: [], may_call: [to] });
    expect(g.status).toBe(200);
  }
  await kw.admin("POST", "/consumers", { name: "c" });
  const k = await kw.admin("POST", "/keys", {
    owner: "consumer:c",
    scopes: ["agent:w", "agent:d", "agent:e", "agent:f", "read:x"],
  });
  caller = { id: k.body.key.id, secret: k.body.secret };
});
afterAll(async () => {
  await kw?.close();
  await up?.close();
});

describe("token exchange (RFC 8693) under attack", () => {
  it("grants a down-scoped, audience-bound token carrying the act chain", async () => {
    const r = await exchange(await forwardedTo("w"), "w", "d", { scope: "agent:d read:x" });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ issued_token_type: TOKEN_TYPE, token_type: "Bearer", scope: "agent:d read:x" });
    const claims = decodeJwt(r.body.access_token);
    expect(claims).toMatchObject({ aud: "d", sub: "consumer:c", client_id: caller.id, act: { sub: "agent:w" } });
    const ok = await fetch(`${kw.url}/agents/d/x`, { headers: { authorization: `Bearer ${r.body.access_token}` } });
    expect(ok.status).toBe(200);
  });

  it("refuses scope escalation with invalid_scope", async () => {
    const r = await exchange(await forwardedTo("w"), "w", "d", { scope: "agent:d admin:all" });
    expect(r.body.error).toBe("invalid_scope");
  });

  it("refuses an audience outside may_call, or unknown, with invalid_target", async () => {
    expect((await exchange(await forwardedTo("w"), "w", "e")).body.error).toBe("invalid_target");
    expect((await exchange(await forwardedTo("w"), "w", "nobody")).body.error).toBe("invalid_target");
  });

  it("refuses an audience the caller itself may not reach", async () => {
    const narrow = await kw.admin("POST", "/keys", { owner: "consumer:c", scopes: ["agent:w"] });
    const r = await exchange(await forwardedTo("w", narrow.body.secret), "w", "d");
    expect(r.body.error).toBe("invalid_target");
  });

  it("refuses a subject token not issued to the actor, and an actor that is not an agent", async () => {
    // d's token presented by w: w was never its audience.
    expect((await exchange(await forwardedTo("d"), "w", "d")).body.error).toBe("invalid_grant");
    const r = await form({
      grant_type: EXCHANGE,
      subject_token: await forwardedTo("w"),
      subject_token_type: TOKEN_TYPE,
      actor_token: caller.secret,
      actor_token_type: TOKEN_TYPE,
      audience: "d",
    });
    expect(r.body.error).toBe("invalid_grant");
  });

  it("a user's token forwarded to an agent cannot be exchanged without that agent as actor (may_call applies)", async () => {
    const userKey = (await kw.admin("POST", "/keys", { owner: "user:u1", scopes: ["agent:w", "agent:e"] })).body
      .secret as string;
    // The user's own token (aud = the issuer) may go to any agent its scopes allow, with no actor…
    const own = await fetch(`${kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: userKey }),
    }).then((r) => readJson<TokenEndpointBody>(r));
    const direct = await form({
      grant_type: EXCHANGE,
      subject_token: own.access_token,
      subject_token_type: TOKEN_TYPE,
      audience: "e",
    });
    expect(direct.status).toBe(200);
    // …but what w received from the gateway is w's to pass on, under w's may_call (w → d only).
    const held = await forwardedTo("w", userKey);
    const bypass = await form({
      grant_type: EXCHANGE,
      subject_token: held,
      subject_token_type: TOKEN_TYPE,
      audience: "e",
    });
    expect(bypass).toMatchObject({ status: 400, body: { error: "invalid_request" } });
    expect((await exchange(held, "w", "e")).body.error).toBe("invalid_target");
  });

  it("caps the act chain depth", async () => {
    const wd = await exchange(await forwardedTo("w"), "w", "d");
    // d holds what the gateway forwards with w's delegated token: act = {sub: agent:w}.
    const atD = await fetch(`${kw.url}/agents/d/x`, { headers: { authorization: `Bearer ${wd.body.access_token}` } });
    const forwardedToD = ((await readJson<SeenRequest>(atD)).headers.authorization as string).slice(7);
    expect(decodeJwt(forwardedToD).act).toMatchObject({ sub: "agent:w" });
    const de = await exchange(forwardedToD, "d", "e");
    expect(de.status).toBe(200);
    expect(decodeJwt(de.body.access_token).act).toMatchObject({ sub: "agent:d", act: { sub: "agent:w" } });
    const atE = await fetch(`${kw.url}/agents/e/x`, { headers: { authorization: `Bearer ${de.body.access_token}` } });
    const forwardedToE = ((await readJson<SeenRequest>(atE)).headers.authorization as string).slice(7);
    const ef = await exchange(forwardedToE, "e", "f");
    expect(ef.status).toBe(400);
    expect(ef.body.error).toBe("invalid_request");
    expect(ef.body.error_description).toContain("longer than 2");
  });

  it("never outlives the subject token, and dies with the caller's or the actor's key", async () => {
    const subject = await forwardedTo("w");
    const r = await exchange(subject, "w", "d");
    expect(decodeJwt(r.body.access_token).exp).toBeLessThanOrEqual(decodeJwt(subject).exp as number);
    const actorKey = await kw.admin("POST", "/keys", { owner: "agent:w", scopes: [] });
    agentKeys.w2 = actorKey.body.secret;
    const viaW2 = await exchange(await forwardedTo("w"), "w2", "d");
    expect(viaW2.status).toBe(200);
    await kw.admin("POST", `/keys/${actorKey.body.key.id}/revoke`);
    const refused = await fetch(`${kw.url}/agents/d/x`, {
      headers: { authorization: `Bearer ${viaW2.body.access_token}` },
    });
    expect(refused.status).toBe(401);
    expect((await readJson<ApiErrorBody>(refused)).error.code).toBe("invalid_token");
  });

  it("malformed exchanges get RFC 6749 errors", async () => {
    const subject = await forwardedTo("w");
    const base = { grant_type: EXCHANGE, subject_token: subject, subject_token_type: TOKEN_TYPE, audience: "d" };
    expect((await form({ ...base, subject_token_type: "urn:x" })).body.error).toBe("invalid_request");
    expect((await form({ ...base, actor_token: agentKeys.w as string })).body.error).toBe("invalid_request");
    expect((await form(base)).body.error).toBe("invalid_request");
    expect(
      (
        await form({
          ...base,
          subject_token: "garbage",
          actor_token: agentKeys.w as string,
          actor_token_type: TOKEN_TYPE,
        })
      ).body.error,
    ).toBe("invalid_grant");
    expect(
      (await form({ ...base, requested_token_type: "urn:ietf:params:oauth:token-type:refresh_token" })).body.error,
    ).toBe("invalid_request");
    const { audience: _a, ...noAudience } = base;
    expect((await form(noAudience)).body.error).toBe("invalid_request");
  });
});
