import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OidcIssuer, startOidcIssuer } from "../../test-support/oidc-issuer.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { startUpstream } from "../../test-support/upstream.js";
import { frozenClock } from "../clock.js";

const JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const SHARED_ISSUER = "https://shared.idp.example";

let kw: TestServer;
let up: Awaited<ReturnType<typeof startUpstream>>;
/** `a` and `b` are two trusted issuers; the rest serve broken JWKS, or none at all (`down`). */
const idps: Record<"a" | "b" | "error" | "garbage" | "huge" | "down", OidcIssuer> = {} as never;
let dir: string;
// Frozen: "at most one refetch per cooldown" is then a fact of the test, not of its speed.
const clock = frozenClock(Date.now());
const nowS = () => Math.floor(clock.now() / 1000);

async function exchange(subjectToken: string, extra: Record<string, string> = {}) {
  const res = await fetch(`${kw.url}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: TOKEN_EXCHANGE,
      subject_token: subjectToken,
      subject_token_type: JWT_TYPE,
      ...extra,
    }).toString(),
  });
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) };
}

/** Refused with `error`, and the answer holds no part of the token's signature. */
async function refused(token: string, error: string, extra: Record<string, string> = {}) {
  const r = await exchange(token, extra);
  expect({ status: r.status, error: r.body.error }).toEqual({ status: 400, error });
  expect(typeof r.body.error_description).toBe("string");
  const signature = token.split(".")[2];
  if (signature && signature.length >= 16) expect(r.text).not.toContain(signature);
  return r;
}

const claims = (over: Record<string, unknown> = {}) => ({ sub: "alice", aud: "keyward", ...over });

beforeAll(async () => {
  const started = await Promise.all(
    (["a", "b", "error", "garbage", "huge", "down"] as const).map(async (k) => [k, await startOidcIssuer()] as const),
  );
  for (const [k, issuer] of started) idps[k] = issuer;
  idps.error.jwksMode = "error";
  idps.garbage.jwksMode = "garbage";
  idps.huge.jwksMode = "huge";
  await idps.down.close();
  up = await startUpstream();

  // `a` keeps the ids of admin-made keys (so its subjects map as they are); the rest are apart.
  const entry = (i: OidcIssuer, scopes: string[], prefix?: string) => ({
    issuer: i.url,
    jwks_uri: i.jwksUri,
    audience: "keyward",
    scopes,
    ...(prefix === undefined ? { share_user_ids_with_keys: true } : { user_prefix: prefix }),
  });
  dir = mkdtempSync(join(tmpdir(), "kw-idp-sec-"));
  const configFile = join(dir, "keyward.json");
  writeFileSync(
    configFile,
    JSON.stringify({
      trusted_issuers: [
        entry(idps.a, ["agent:*", "mcp:cloud"]),
        entry(idps.b, ["mcp:cloud"], "b."),
        entry(idps.error, ["agent:*"], "error."),
        entry(idps.garbage, ["agent:*"], "garbage."),
        entry(idps.huge, ["agent:*"], "huge."),
        entry(idps.down, ["agent:*"], "down."),
        // One issuer name, two entries: a token is judged by the entry whose keys verify it.
        {
          issuer: SHARED_ISSUER,
          jwks_uri: idps.a.jwksUri,
          audience: "shared-a",
          scopes: ["agent:echo"],
          user_prefix: "shared.",
        },
        {
          issuer: SHARED_ISSUER,
          jwks_uri: idps.b.jwksUri,
          audience: "shared-b",
          scopes: ["mcp:cloud"],
          user_prefix: "shared.",
        },
      ],
    }),
  );
  kw = await startTestServer({}, { configFile, clock });
  expect((await kw.admin("POST", "/agents", { name: "echo", upstream: up.url })).status).toBe(201);
  // Loads a's and b's key sets, so each case below starts from known keys.
  expect((await exchange(idps.a.sign(claims()))).status).toBe(200);
  expect((await exchange(idps.b.sign(claims()))).status).toBe(200);
});
afterAll(async () => {
  await kw?.close();
  await Promise.all([...Object.values(idps).map((i) => i.close()), up?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("who may vouch for a user", () => {
  it("refuses an issuer that is not configured, and a Keyward token presented as a jwt", async () => {
    await refused(idps.a.sign(claims({ iss: "https://evil.example" })), "invalid_grant");
    await refused(idps.a.sign(claims({ iss: `${idps.a.url}/` })), "invalid_grant");
    await refused(idps.a.sign(claims({ iss: undefined })), "invalid_grant");
    const key = await kw.admin("POST", "/keys", { owner: "user:alice", scopes: ["agent:*"] });
    const own = await fetch(`${kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: key.body.secret }),
    });
    await refused(((await own.json()) as { access_token: string }).access_token, "invalid_grant");
  });

  it("refuses a's issuer name signed with b's keys, whatever kid it names", async () => {
    await refused(idps.b.sign(claims({ iss: idps.a.url })), "invalid_grant");
    await refused(idps.b.sign(claims({ iss: idps.a.url }), { kid: idps.a.kid() }), "invalid_grant");
    await refused(
      idps.b.sign(claims({ iss: idps.a.url }), { alg: "ES256", kid: idps.a.kid("ES256") }),
      "invalid_grant",
    );
  });

  it("trusts, among entries sharing an issuer name, only the one whose keys verify the token", async () => {
    // Signed by b, for the audience of the entry that fetches a's keys: neither entry accepts it.
    await refused(idps.b.sign(claims({ iss: SHARED_ISSUER, aud: "shared-a" })), "invalid_grant");
    const r = await exchange(idps.b.sign(claims({ iss: SHARED_ISSUER, aud: "shared-b" })));
    expect(r.status).toBe(200);
    expect(r.body.scope).toBe("mcp:cloud");
  });

  it("refuses a token whose payload was changed after signing", async () => {
    const [h, , s] = idps.a.sign(claims()).split(".");
    const forged = Buffer.from(JSON.stringify({ ...claims({ sub: "admin" }), iss: idps.a.url, exp: nowS() + 60 }));
    await refused(`${h}.${forged.toString("base64url")}.${s}`, "invalid_grant");
  });
});

describe("the external token's own claims", () => {
  it("requires the configured audience", async () => {
    await refused(idps.a.sign(claims({ aud: "someone-else" })), "invalid_grant");
    await refused(idps.a.sign(claims({ aud: ["x", "y"] })), "invalid_grant");
    await refused(idps.a.sign(claims({ aud: undefined })), "invalid_grant");
  });

  it("requires exp in the future; honours nbf and iat with 30 s of leeway", async () => {
    await refused(idps.a.sign(claims({ exp: nowS() })), "invalid_grant");
    await refused(idps.a.sign(claims({ exp: undefined })), "invalid_grant");
    await refused(idps.a.sign(claims({ exp: "9999999999" })), "invalid_grant");
    await refused(idps.a.sign(claims({ nbf: nowS() + 31 })), "invalid_grant");
    await refused(idps.a.sign(claims({ iat: nowS() + 31 })), "invalid_grant");
    expect((await exchange(idps.a.sign(claims({ nbf: nowS() + 30, iat: nowS() + 30 })))).status).toBe(200);
  });

  it.each([
    ["missing", { sub: undefined }],
    ["a number", { sub: 42 }],
    ["a path", { sub: "../x" }],
    ["too long", { sub: "a".repeat(129) }],
    ["empty", { sub: "" }],
    ["with a space", { sub: "alice smith" }],
  ])("refuses a subject claim that is %s", async (_what, over) => {
    await refused(idps.a.sign(claims(over)), "invalid_grant");
  });

  it("accepts a subject of exactly 128 user-id characters", async () => {
    const r = await exchange(idps.a.sign(claims({ sub: `${"a".repeat(120)}@b.c-d+e` })));
    expect(r.status).toBe(200);
    expect(decodeJwt(r.body.access_token).sub).toBe(`user:${"a".repeat(120)}@b.c-d+e`);
  });
});

describe("the signature and its header", () => {
  it("refuses alg none and HS256 keyed with the issuer's public key", async () => {
    await refused(idps.a.sign(claims(), { alg: "none" }), "invalid_grant");
    await refused(idps.a.sign(claims(), { alg: "none", header: { alg: "None" } }), "invalid_grant");
    await refused(idps.a.sign(claims(), { alg: "HS256" }), "invalid_grant");
  });

  it.each([
    ["jku", "https://evil.example/jwks"],
    ["x5u", "https://evil.example/cert"],
    ["jwk", { kty: "oct", k: "AAAA" }],
    ["x5c", ["MIIB"]],
    ["crit", ["exp"]],
  ])("refuses a token carrying a %s header", async (name, value) => {
    await refused(idps.a.sign(claims(), { header: { [name]: value } }), "invalid_grant");
  });

  it("refuses an alg the key is not for (RS256 header on the EC key's kid)", async () => {
    await refused(idps.a.sign(claims(), { kid: idps.a.kid("ES256") }), "invalid_grant");
  });

  it("refuses an unknown kid after one refetch, and does not refetch again within the cooldown", async () => {
    // Earlier cases may have refetched a's keys at this (frozen) instant: start past their cooldown.
    clock.advance(5000);
    const hits = idps.a.jwksHits;
    await refused(idps.a.sign(claims(), { kid: "made-up-1" }), "invalid_grant");
    expect(idps.a.jwksHits).toBe(hits + 1);
    await refused(idps.a.sign(claims(), { kid: "made-up-2" }), "invalid_grant");
    await refused(idps.a.sign(claims(), { kid: "../../etc/passwd" }), "invalid_grant");
    await refused(idps.a.sign(claims(), { header: { kid: undefined } }), "invalid_grant");
    expect(idps.a.jwksHits).toBe(hits + 1);
    clock.advance(5000);
    await refused(idps.a.sign(claims(), { kid: "made-up-3" }), "invalid_grant");
    expect(idps.a.jwksHits).toBe(hits + 2);
  });

  it("refuses what is not a JWT at all", async () => {
    for (const token of ["not-a-jwt", "a.b.c", "kwk_abc", `${"A".repeat(40_000)}.x.y`]) {
      await refused(token, "invalid_grant");
    }
  });
});

describe("the issuer's JWKS endpoint failing", () => {
  it.each([
    ["down", "down"],
    ["answering 500", "error"],
    ["answering garbage", "garbage"],
    ["answering more than 1 MiB", "huge"],
  ] as const)("answers invalid_grant, not 500, when it is %s", async (_what, which) => {
    const idp = idps[which];
    await refused(idp.sign(claims()), "invalid_grant");
    if (which !== "down") expect(idp.jwksHits).toBe(1);
  });
});

describe("what may be asked for", () => {
  it("refuses scopes beyond the issuer's", async () => {
    await refused(idps.b.sign(claims()), "invalid_scope", { scope: "mcp:cloud agent:echo" });
    await refused(idps.a.sign(claims()), "invalid_scope", { scope: "admin" });
  });

  it("refuses an audience that is not an agent, or not in the user's scopes", async () => {
    await refused(idps.a.sign(claims()), "invalid_target", { audience: "no-such-agent" });
    await refused(idps.b.sign(claims()), "invalid_target", { audience: "echo" });
  });

  it("refuses malformed requests as invalid_request", async () => {
    const token = idps.a.sign(claims());
    await refused(token, "invalid_request", {
      actor_token: "kwk_x",
      actor_token_type: "urn:ietf:params:oauth:token-type:access_token",
    });
    await refused(token, "invalid_request", { subject_token_type: "urn:ietf:params:oauth:token-type:id_token" });
    await refused("", "invalid_request");
  });
});
