import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AUDIENCE, craftToken, startIssuer, type TestIssuer, validClaims } from "../../test-support/verify/issuer.js";
import { JwksUnavailableError, TokenVerificationError } from "./errors.js";
import { verifier } from "./verifier.js";

let issuer: TestIssuer;
let nowMs: number;
const clock = () => nowMs;
beforeEach(async () => {
  issuer = await startIssuer();
  nowMs = Date.now();
});
afterEach(() => issuer.close());

const v = (extra: Partial<Parameters<typeof verifier>[0]> = {}) =>
  verifier({ issuer: issuer.url, audience: AUDIENCE, now: clock, ...extra });

async function codeOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err instanceof TokenVerificationError || err instanceof JwksUnavailableError) return err.code;
  throw new Error(`expected a verification failure, got ${String(err)}`);
}

describe("JWKS caching", () => {
  it("fetches the key set once for many tokens", async () => {
    const verify = v();
    const tokens = await Promise.all(Array.from({ length: 20 }, () => issuer.token()));
    for (const t of tokens) await verify.verify(t);
    await Promise.all(tokens.map((t) => verify.verify(t)));
    expect(issuer.fetches).toBe(1);
  });

  it("shares one fetch between the concurrent first requests", async () => {
    const verify = v();
    const release = issuer.hold();
    const pending = Promise.all(Array.from({ length: 10 }, async () => verify.verify(await issuer.token())));
    await until(() => issuer.fetches === 1);
    release();
    expect(await pending).toHaveLength(10);
    expect(issuer.fetches).toBe(1);
  });

  it("can load the key set ahead of the first request", async () => {
    const verify = v();
    await verify.refresh();
    expect(issuer.fetches).toBe(1);
    await verify.verify(await issuer.token());
    expect(issuer.fetches).toBe(1);
  });

  it("refreshes a key set older than jwksMaxAgeS in the background, keeping results whose key is unchanged", async () => {
    const verify = v({ jwksMaxAgeS: 600 });
    const raw = await issuer.token({ exp: Math.floor(nowMs / 1000) + 3600 });
    const first = await verify.verify(raw);
    nowMs += 601_000;
    expect(await verify.verify(raw)).toBe(first);
    await until(() => issuer.fetches === 2);
    expect(await verify.verify(raw)).toBe(first);
  });

  it("stops accepting tokens of a key the issuer no longer publishes, even cached ones, after a refresh", async () => {
    const verify = v({ jwksMaxAgeS: 600 });
    const oldKey = issuer.keys[0]!;
    const raw = await issuer.token({ exp: Math.floor(nowMs / 1000) + 3600 });
    await verify.verify(raw);
    await issuer.rotate();
    issuer.keys = issuer.keys.filter((k) => k !== oldKey);
    nowMs += 601_000;
    await verify.verify(raw).catch(() => {}); // the stale lookup that starts the background refresh
    await until(() => issuer.fetches === 2);
    await settle();
    expect(await codeOf(verify.verify(raw))).toBe("invalid_token");
  });
});

describe("key rotation", () => {
  it("refetches once when a token names a new kid", async () => {
    const verify = v();
    await verify.verify(await issuer.token());
    const next = await issuer.rotate();
    await verify.verify(await issuer.token({}, {}, next));
    await verify.verify(await issuer.token({}, {}, next));
    expect(issuer.fetches).toBe(2);
    // The retired key still verifies while the issuer publishes it.
    await verify.verify(await issuer.token({}, {}, issuer.keys[1]));
    expect(issuer.fetches).toBe(2);
  });

  it("refetches at most once per cooldown however many unknown kids arrive", async () => {
    const verify = v({ jwksCooldownS: 30 });
    await verify.verify(await issuer.token());
    const spam = () =>
      craftToken({ alg: "ES256", typ: "at+jwt", kid: randomBytes(16).toString("hex") }, validClaims(issuer.url), {
        key: issuer.keys[0]!,
      });

    const codes = await Promise.all(Array.from({ length: 50 }, () => codeOf(verify.verify(spam()))));
    expect(new Set(codes)).toEqual(new Set(["invalid_token"]));
    expect(issuer.fetches).toBe(2);
    for (let i = 0; i < 50; i++) expect(await codeOf(verify.verify(spam()))).toBe("invalid_token");
    expect(issuer.fetches).toBe(2);

    // A genuine rotation within the cooldown waits for it to end.
    const next = await issuer.rotate();
    const fresh = await issuer.token({}, {}, next);
    nowMs += 29_000;
    expect(await codeOf(verify.verify(fresh))).toBe("invalid_token");
    expect(issuer.fetches).toBe(2);
    nowMs += 1_000;
    expect((await verify.verify(fresh)).subject).toBe("consumer:billing");
    expect(issuer.fetches).toBe(3);
  });

  it("shares one refetch between concurrent tokens with a new kid", async () => {
    const verify = v();
    await verify.verify(await issuer.token());
    const next = await issuer.rotate();
    const tokens = await Promise.all(Array.from({ length: 10 }, () => issuer.token({}, {}, next)));
    const release = issuer.hold();
    const pending = Promise.all(tokens.map((t) => verify.verify(t)));
    await until(() => issuer.fetches === 2);
    release();
    expect(await pending).toHaveLength(10);
    expect(issuer.fetches).toBe(2);
  });
});

describe("JWKS outages", () => {
  it("answers JwksUnavailableError while the key set was never loaded, then recovers", async () => {
    const verify = v();
    const raw = await issuer.token();
    issuer.failWith(500);
    expect(await codeOf(verify.verify(raw))).toBe("jwks_unavailable");
    expect(issuer.fetches).toBe(1);
    // Within a second the failure is not retried: no request storm against a struggling issuer.
    expect(await codeOf(verify.verify(raw))).toBe("jwks_unavailable");
    expect(issuer.fetches).toBe(1);
    issuer.failWith(200);
    nowMs += 1_000;
    expect((await verify.verify(raw)).subject).toBe("consumer:billing");
    expect(issuer.fetches).toBe(2);
  });

  it("keeps verifying with the keys it has when a refetch fails", async () => {
    const verify = v();
    await verify.verify(await issuer.token());
    issuer.failWith(503);
    const next = await issuer.rotate();
    expect(await codeOf(verify.verify(await issuer.token({}, {}, next)))).toBe("invalid_token");
    expect(issuer.fetches).toBe(2);
    await expect(verify.verify(await issuer.token({}, {}, issuer.keys[1]))).resolves.toBeTruthy();
  });

  it("treats an unreachable issuer and a non-JWKS answer as outages", async () => {
    const closed = verifier({ issuer: "http://127.0.0.1:9", audience: AUDIENCE });
    expect(await codeOf(closed.verify(await issuer.token()))).toBe("jwks_unavailable");
    const notJwks = verifier({
      issuer: issuer.url,
      audience: AUDIENCE,
      fetch: async () => new Response('{"keys": "nope"}', { status: 200 }),
    });
    expect(await codeOf(notJwks.verify(await issuer.token()))).toBe("jwks_unavailable");
  });

  it("does not follow a redirect from the JWKS endpoint", async () => {
    const redirecting = verifier({
      issuer: issuer.url,
      audience: AUDIENCE,
      fetch: async () => new Response(null, { status: 302, headers: { location: "http://attacker.example/jwks" } }),
    });
    expect(await codeOf(redirecting.verify(await issuer.token()))).toBe("jwks_unavailable");
  });
});

/** Waits for a condition driven by I/O (a request reaching the test server), without a fixed sleep. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met within 5 s");
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Lets the callbacks of a response that has arrived run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}
