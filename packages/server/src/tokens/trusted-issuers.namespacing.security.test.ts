import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OidcIssuer, startOidcIssuer } from "../../test-support/oidc-issuer.js";
import { startUsersFixture, type UsersFixture } from "../../test-support/users/users-fixture.js";

/**
 * Whose credentials an external token reaches (SPEC §8, issue 11 finding 5). Before user_prefix,
 * every issuer's `sub` became the same `user:<sub>`, so a second provider, or an admin-made key
 * for `user:alice`, was alice and read her per-user credentials.
 */

const JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";

let f: UsersFixture;
/** `a` and `b` each have a prefix; `s` shares ids with admin-made keys; `mail` names users by email. */
const idps: Record<"a" | "b" | "s" | "mail", OidcIssuer> = {} as never;
let dir: string;
let agent: { name: string; key: string };

async function exchange(subjectToken: string, extra: Record<string, string> = {}) {
  const res = await fetch(`${f.kw.url}/oauth/token`, {
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

/** The user token minted for `token` (for Keyward itself, or for `audience`), and its `sub`. */
async function userToken(token: string, audience?: string) {
  const r = await exchange(token, audience === undefined ? {} : { audience });
  expect(r.status, r.text).toBe(200);
  const accessToken = r.body.access_token as string;
  return { accessToken, sub: decodeJwt(accessToken).sub };
}

/** Refused as invalid_grant, with an RFC 6749 body holding no part of the token's signature. */
async function refused(token: string) {
  const r = await exchange(token);
  expect({ status: r.status, error: r.body.error }).toEqual({ status: 400, error: "invalid_grant" });
  expect(typeof r.body.error_description).toBe("string");
  expect(r.text).not.toContain(token.split(".")[2]);
  return r.body.error_description as string;
}

/** What the agent gets of `user`'s `cloud_ak` with the user token minted from `token`. */
async function fetchCloudAk(token: string) {
  const { accessToken } = await userToken(token, agent.name);
  return f.tools(agent.key, { user_token: accessToken, names: ["cloud_ak"] });
}

const claims = (sub: string, over: Record<string, unknown> = {}) => ({ sub, aud: "keyward", ...over });

beforeAll(async () => {
  const started = await Promise.all(
    (["a", "b", "s", "mail"] as const).map(async (k) => [k, await startOidcIssuer()] as const),
  );
  for (const [k, issuer] of started) idps[k] = issuer;
  const entry = (i: OidcIssuer, extra: Record<string, unknown>) => ({
    issuer: i.url,
    jwks_uri: i.jwksUri,
    audience: "keyward",
    scopes: ["agent:*"],
    ...extra,
  });
  dir = mkdtempSync(join(tmpdir(), "kw-idp-ns-"));
  const configFile = join(dir, "keyward.json");
  writeFileSync(
    configFile,
    JSON.stringify({
      trusted_issuers: [
        entry(idps.a, { user_prefix: "a." }),
        entry(idps.b, { user_prefix: "b." }),
        entry(idps.s, { share_user_ids_with_keys: true }),
        entry(idps.mail, { user_prefix: "mail.", subject_claim: "email" }),
      ],
    }),
  );
  f = await startUsersFixture({}, { configFile });
  agent = await f.agent(["cloud_ak"]);
});
afterAll(async () => {
  await f?.close();
  await Promise.all(Object.values(idps).map((i) => i.close()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("one sub at two issuers", () => {
  it("is two users, each with only their own credentials", async () => {
    const atA = await userToken(idps.a.sign(claims("alice")));
    const atB = await userToken(idps.b.sign(claims("alice")));
    expect([atA.sub, atB.sub]).toEqual(["user:a.alice", "user:b.alice"]);

    expect((await f.selfPut(atA.accessToken, "cloud_ak", "AK-OF-A-ALICE")).status).toBe(201);
    expect((await f.selfList(atB.accessToken)).body.items).toEqual([]);
    expect((await f.selfList(atA.accessToken)).body.items.map((i: { name: string }) => i.name)).toEqual(["cloud_ak"]);

    const fromB = await fetchCloudAk(idps.b.sign(claims("alice")));
    expect({ status: fromB.status, code: fromB.body.error?.code }).toEqual({
      status: 404,
      code: "credential_not_found",
    });
    expect(JSON.stringify(fromB.body)).not.toContain("AK-OF-A-ALICE");
    const fromA = await fetchCloudAk(idps.a.sign(claims("alice")));
    expect(fromA.body).toEqual({ credentials: { cloud_ak: "AK-OF-A-ALICE" } });

    // b's alice cannot overwrite or delete a's either: her writes land under her own id.
    expect((await f.selfPut(atB.accessToken, "cloud_ak", "AK-OF-B-ALICE")).status).toBe(201);
    expect((await f.selfDelete(atB.accessToken, "cloud_ak")).status).toBe(204);
    expect((await fetchCloudAk(idps.a.sign(claims("alice")))).body.credentials.cloud_ak).toBe("AK-OF-A-ALICE");
  });
});

describe("an admin-made key for user:<id>", () => {
  it("does not reach a prefixed issuer's user of that id, nor she its credentials", async () => {
    expect((await f.adminPut("bob", "cloud_ak", "AK-OF-KEY-BOB")).status).toBe(201);
    expect((await f.adminPut("a.bob", "cloud_ak", "AK-OF-A-BOB")).status).toBe(201);
    const key = await f.userKey("bob");
    const fromKey = await f.tools(agent.key, {
      user_token: await f.token(key.secret, { audience: agent.name }),
      names: ["cloud_ak"],
    });
    expect(fromKey.body).toEqual({ credentials: { cloud_ak: "AK-OF-KEY-BOB" } });
    expect((await fetchCloudAk(idps.a.sign(claims("bob")))).body).toEqual({ credentials: { cloud_ak: "AK-OF-A-BOB" } });
  });

  it("is the same user as the issuer that opted in with share_user_ids_with_keys", async () => {
    expect((await f.adminPut("carol", "cloud_ak", "AK-OF-CAROL")).status).toBe(201);
    expect((await userToken(idps.s.sign(claims("carol")))).sub).toBe("user:carol");
    expect((await fetchCloudAk(idps.s.sign(claims("carol")))).body).toEqual({
      credentials: { cloud_ak: "AK-OF-CAROL" },
    });
  });

  it("never lets the sharing issuer name a prefixed issuer's user", async () => {
    // s's `a.alice` would be user:a.alice, a's alice (whose credential the first case stored).
    expect(await refused(idps.s.sign(claims("a.alice")))).toMatch(/another issuer's user_prefix/);
    await refused(idps.s.sign(claims("mail.x@example.com")));
  });
});

describe("the prefixed id", () => {
  it("must still be a user id of at most 128 characters", async () => {
    // "a." + 126 = 128: accepted; one more is refused, not cut short.
    expect((await userToken(idps.a.sign(claims("x".repeat(126))))).sub).toBe(`user:a.${"x".repeat(126)}`);
    expect(await refused(idps.a.sign(claims("x".repeat(127))))).toMatch(/too long/);
    await refused(idps.a.sign(claims("")));
    await refused(idps.a.sign(claims("..")));
  });
});

describe("email as the subject claim", () => {
  const mail = (over: Record<string, unknown>) =>
    idps.mail.sign(claims("opaque-id", { email: "dan@example.com", ...over }));

  it("is accepted only with email_verified exactly true", async () => {
    expect((await userToken(mail({ email_verified: true }))).sub).toBe("user:mail.dan@example.com");
  });

  it.each([
    ["absent", undefined],
    ["false", false],
    ['the string "true"', "true"],
    ["1", 1],
    ["null", null],
  ])("is refused when email_verified is %s", async (_what, verified) => {
    expect(await refused(mail({ email_verified: verified }))).toMatch(/email is not verified/);
  });
});

describe("the external token's typ", () => {
  it.each([
    ["dpop+jwt"],
    ["logout+jwt"],
    ["secevent+jwt"],
    ["application/secevent+jwt"],
    ["at+jwt+x"],
    ["JWS"],
    [""],
    [42],
    [null],
  ])("refuses typ %j", async (typ) => {
    expect(await refused(idps.a.sign(claims("erin"), { header: { typ } }))).toMatch(/typ/);
  });

  it.each([[undefined], ["JWT"], ["jwt"], ["at+jwt"], ["AT+JWT"], ["application/at+jwt"], ["application/jwt"]])(
    "accepts typ %j",
    async (typ) => {
      expect((await userToken(idps.a.sign(claims("erin"), { header: { typ } }))).sub).toBe("user:a.erin");
    },
  );
});
