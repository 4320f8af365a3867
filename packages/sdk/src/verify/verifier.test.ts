import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIENCE, startIssuer, type TestIssuer } from "../../test-support/verify/issuer.js";
import { TokenVerificationError } from "./errors.js";
import { verifier } from "./verifier.js";

let issuer: TestIssuer;
beforeAll(async () => {
  issuer = await startIssuer();
});
afterAll(() => issuer.close());

async function rejection(p: Promise<unknown>): Promise<TokenVerificationError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TokenVerificationError);
  return err as TokenVerificationError;
}

describe("verifier", () => {
  it("verifies a Keyward access token and exposes its claims", async () => {
    const v = verifier({ issuer: issuer.url, audience: AUDIENCE });
    const raw = await issuer.token({ sub: "user:42", scope: "agent:research read:docs", client_id: "key_abc" });
    const token = await v.verify(raw);
    expect(token.subject).toBe("user:42");
    expect(token.audience).toEqual([AUDIENCE]);
    expect(token.scopes).toEqual(["agent:research", "read:docs"]);
    expect(token.clientId).toBe("key_abc");
    expect(token.actor).toEqual([]);
    expect(token.claims.iss).toBe(issuer.url);
    expect(token.expiresAt).toBe(token.claims.exp);
  });

  it("accepts an audience list containing this service, and a verifier serving several audiences", async () => {
    const raw = await issuer.token({ aud: ["other", AUDIENCE] });
    expect((await verifier({ issuer: issuer.url, audience: AUDIENCE }).verify(raw)).audience).toEqual([
      "other",
      AUDIENCE,
    ]);
    const single = await issuer.token({ aud: "tools" });
    await expect(verifier({ issuer: issuer.url, audience: ["tools", AUDIENCE] }).verify(single)).resolves.toBeTruthy();
  });

  it("reads the delegation chain outermost first", async () => {
    const v = verifier({ issuer: issuer.url, audience: AUDIENCE });
    const raw = await issuer.token({ act: { sub: "agent:workflow", act: { sub: "agent:planner" } } });
    expect((await v.verify(raw)).actor).toEqual(["agent:workflow", "agent:planner"]);
  });

  it("accepts typ application/at+jwt and any case", async () => {
    const v = verifier({ issuer: issuer.url, audience: AUDIENCE });
    await expect(v.verify(await issuer.token({}, { typ: "application/at+jwt" }))).resolves.toBeTruthy();
    await expect(v.verify(await issuer.token({}, { typ: "AT+JWT" }))).resolves.toBeTruthy();
  });

  it("treats a token without scope as having no scopes", async () => {
    const v = verifier({ issuer: issuer.url, audience: AUDIENCE });
    expect((await v.verify(await issuer.token({ scope: undefined }))).scopes).toEqual([]);
    expect((await v.verify(await issuer.token({ scope: "" }))).scopes).toEqual([]);
  });

  it("reads a Bearer Authorization header", async () => {
    const v = verifier({ issuer: issuer.url, audience: AUDIENCE });
    const raw = await issuer.token();
    expect((await v.verifyHeader(`Bearer ${raw}`)).subject).toBe("consumer:billing");
    expect((await v.verifyHeader(`bearer  ${raw} `)).subject).toBe("consumer:billing");
    expect((await rejection(v.verifyHeader(undefined))).code).toBe("missing_credentials");
    expect((await rejection(v.verifyHeader("   "))).code).toBe("missing_credentials");
    expect((await rejection(v.verifyHeader(["a", "b"] as unknown as string))).code).toBe("missing_credentials");
    expect((await rejection(v.verifyHeader(`Basic ${raw}`))).code).toBe("invalid_token");
    expect((await rejection(v.verifyHeader(`Bearer ${raw} extra`))).code).toBe("invalid_token");
  });

  it("allows 5 s of clock skew on exp, nbf and iat by default", async () => {
    let nowMs = Date.now();
    const v = verifier({ issuer: issuer.url, audience: AUDIENCE, cacheSize: 0, now: () => nowMs });
    const nowS = Math.floor(nowMs / 1000);
    const raw = await issuer.token({ iat: nowS + 4, nbf: nowS + 4, exp: nowS + 60 });
    await expect(v.verify(raw)).resolves.toBeTruthy();
    expect((await rejection(v.verify(await issuer.token({ iat: nowS + 7 })))).code).toBe("invalid_token");
    expect((await rejection(v.verify(await issuer.token({ nbf: nowS + 7 })))).code).toBe("invalid_token");

    nowMs = (nowS + 60 + 4) * 1000;
    await expect(v.verify(raw)).resolves.toBeTruthy();
    nowMs = (nowS + 60 + 5) * 1000;
    expect((await rejection(v.verify(raw))).code).toBe("token_expired");
  });

  it("honours clockToleranceS, down to none", async () => {
    const nowMs = Date.now();
    const nowS = Math.floor(nowMs / 1000);
    const raw = await issuer.token({ iat: nowS - 100, exp: nowS - 1 });
    const strict = verifier({ issuer: issuer.url, audience: AUDIENCE, clockToleranceS: 0, now: () => nowMs });
    expect((await rejection(strict.verify(raw))).code).toBe("token_expired");
    const lax = verifier({ issuer: issuer.url, audience: AUDIENCE, clockToleranceS: 30, now: () => nowMs });
    await expect(lax.verify(raw)).resolves.toBeTruthy();
  });

  it("serves a repeated token from its cache, still expiring it on time", async () => {
    let nowMs = Date.now();
    const nowS = Math.floor(nowMs / 1000);
    const v = verifier({ issuer: issuer.url, audience: AUDIENCE, clockToleranceS: 0, now: () => nowMs });
    const raw = await issuer.token({ exp: nowS + 10 });
    const first = await v.verify(raw);
    expect(await v.verify(raw)).toBe(first);
    nowMs = (nowS + 10) * 1000;
    expect((await rejection(v.verify(raw))).code).toBe("token_expired");
  });

  it("bounds its cache: old tokens are verified again, recent ones are still served from memory", async () => {
    const v = verifier({ issuer: issuer.url, audience: AUDIENCE, cacheSize: 4 });
    const tokens = await Promise.all(Array.from({ length: 6 }, () => issuer.token()));
    const first = await v.verify(tokens[0]!);
    for (const t of tokens.slice(1)) await v.verify(t);
    const last = await v.verify(tokens[5]!);
    expect(await v.verify(tokens[5]!)).toBe(last);
    const again = await v.verify(tokens[0]!);
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });

  it("hands out frozen results, so one request cannot change what the next one sees", async () => {
    const v = verifier({ issuer: issuer.url, audience: AUDIENCE });
    const raw = await issuer.token({ act: { sub: "agent:workflow" } });
    const token = await v.verify(raw);
    expect(() => (token.scopes as string[]).push("admin")).toThrow(TypeError);
    expect(() => {
      (token.claims as Record<string, unknown>).sub = "admin:root";
    }).toThrow(TypeError);
    expect(() => {
      ((token.claims.act as Record<string, unknown>) ?? {}).sub = "agent:evil";
    }).toThrow(TypeError);
    expect((await v.verify(raw)).scopes).toEqual(["agent:research", "read:docs"]);
  });

  it("verifies EdDSA tokens only when configured to", async () => {
    const ed = await issuer.rotate("EdDSA");
    try {
      const raw = await issuer.token({}, {}, ed);
      const pinned = verifier({ issuer: issuer.url, audience: AUDIENCE });
      expect((await rejection(pinned.verify(raw))).code).toBe("invalid_token");
      const both = verifier({ issuer: issuer.url, audience: AUDIENCE, algorithms: ["ES256", "EdDSA"] });
      expect((await both.verify(raw)).subject).toBe("consumer:billing");
      await expect(both.verify(await issuer.token({}, {}, issuer.keys[1]))).resolves.toBeTruthy();
    } finally {
      issuer.keys = issuer.keys.filter((k) => k !== ed);
    }
  });

  it("refuses a bad configuration at construction, naming the option", () => {
    expect(() => verifier({ issuer: "", audience: AUDIENCE })).toThrow(/issuer/);
    expect(() => verifier({ issuer: "keyward", audience: AUDIENCE })).toThrow(/issuer must be an http\(s\) URL/);
    expect(() => verifier({ issuer: issuer.url, audience: [] })).toThrow(/audience/);
    expect(() => verifier({ issuer: issuer.url, audience: AUDIENCE, jwksUri: "file:///etc/passwd" })).toThrow(
      /jwksUri/,
    );
    expect(() => verifier({ issuer: issuer.url, audience: AUDIENCE, clockToleranceS: -1 })).toThrow(/clockToleranceS/);
    expect(() => verifier({ issuer: issuer.url, audience: AUDIENCE, cacheSize: 1e9 })).toThrow(
      /cacheSize must be at most 1000000/,
    );
    expect(() => verifier({ issuer: issuer.url, audience: AUDIENCE, algorithms: ["HS256" as "ES256"] })).toThrow(
      /algorithms/,
    );
    // A non-URL issuer is fine when the JWKS location is given.
    expect(() =>
      verifier({ issuer: "keyward", audience: AUDIENCE, jwksUri: `${issuer.url}/.well-known/jwks.json` }),
    ).not.toThrow();
  });
});
