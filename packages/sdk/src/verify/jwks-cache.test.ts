import { describe, expect, it } from "vitest";
import { createJwksCache, type JwkImporter, JwksUnavailableError, MAX_JWKS_BYTES } from "./jwks-export.js";

/** The generic cache on its own, through the `@keyward/sdk/jwks` surface, with a fake fetch and a frozen clock. */
interface FakeKey {
  kid: string;
  x: unknown;
}

function fakeEndpoint(initial: unknown[]) {
  const state = { jwks: initial, fetches: 0, body: undefined as (() => Response) | undefined };
  const fetch: typeof globalThis.fetch = async () => {
    state.fetches++;
    return state.body ? state.body() : Response.json({ keys: state.jwks });
  };
  return { state, fetch };
}

const plainImporter: JwkImporter<FakeKey> = (jwk) =>
  typeof jwk.x === "string" ? { kid: jwk.kid as string, x: jwk.x } : undefined;

function cache(fetch: typeof globalThis.fetch, importKey: JwkImporter<FakeKey> = plainImporter, nowMs = { t: 0 }) {
  return createJwksCache({ uri: "https://idp.test/jwks", fetch, importKey, now: () => nowMs.t, cooldownMs: 5000 });
}

describe("createJwksCache (generic)", () => {
  it("keeps what importKey returns, skipping entries without a kid, with another use, duplicated, or that throw", async () => {
    const { fetch } = fakeEndpoint([
      { kid: "a", x: "1" },
      { x: "no-kid" },
      { kid: "", x: "empty-kid" },
      { kid: "enc", use: "enc", x: "2" },
      { kid: "a", x: "duplicate" },
      { kid: "boom", x: "3" },
      { kid: "skipped", x: 4 },
      { kid: "b", use: "sig", x: "5" },
      "not an object",
      null,
    ]);
    const importKey: JwkImporter<FakeKey> = (jwk) => {
      if (jwk.kid === "boom") throw new Error("not on the curve");
      return plainImporter(jwk);
    };
    const jwks = cache(fetch, importKey);
    await jwks.refresh();
    expect(jwks.get("a")).toEqual({ kid: "a", x: "1" });
    expect(jwks.get("b")).toEqual({ kid: "b", x: "5" });
    for (const kid of ["enc", "boom", "skipped", ""]) expect(jwks.get(kid)).toBeUndefined();
  });

  it("keeps the same key object for an unchanged JWK across refreshes, and re-imports a changed one", async () => {
    const { state, fetch } = fakeEndpoint([
      { kid: "a", x: "1" },
      { kid: "b", x: "2" },
    ]);
    let imports = 0;
    const jwks = cache(fetch, (jwk) => {
      imports++;
      return plainImporter(jwk);
    });
    await jwks.refresh();
    const a = jwks.get("a");
    const b = jwks.get("b");
    // Same public members in another order; b's key material changed under the same kid.
    state.jwks = [
      { x: "1", kid: "a" },
      { kid: "b", x: "changed" },
    ];
    await jwks.refresh();
    expect(jwks.get("a")).toBe(a);
    expect(jwks.get("b")).not.toBe(b);
    expect(jwks.get("b")).toEqual({ kid: "b", x: "changed" });
    expect(imports).toBe(3);
  });

  it("loads the key set on first use whatever the kid, but refetches only for kids that could be key ids", async () => {
    const { state, fetch } = fakeEndpoint([{ kid: "a", x: "1" }]);
    const clock = { t: 0 };
    const jwks = cache(fetch, plainImporter, clock);
    expect(await jwks.resolveMissing("a b")).toBeUndefined();
    expect(state.fetches).toBe(1);
    expect(jwks.get("a")).toBeDefined();
    clock.t += 60_000;
    for (const kid of ["a b", "line\nbreak", "x".repeat(257), "ключ"]) {
      expect(await jwks.resolveMissing(kid)).toBeUndefined();
    }
    expect(state.fetches).toBe(1);
    // External issuers' kids may carry ':' (URN-like names) or '/' and '+' (standard base64, as
    // Amazon Cognito's do): those may refetch, once per cooldown.
    state.jwks = [...state.jwks, { kid: "urn:idp:key:2", x: "2" }, { kid: "Ab+c/d=", x: "3" }];
    expect(await jwks.resolveMissing("urn:idp:key:2")).toEqual({ kid: "urn:idp:key:2", x: "2" });
    expect(state.fetches).toBe(2);
    clock.t += 60_000;
    expect(await jwks.resolveMissing("Ab+c/d=")).toEqual({ kid: "Ab+c/d=", x: "3" });
    expect(state.fetches).toBe(3);
  });

  it("refuses a body past 1 MiB while streaming it, without a content-length, as an outage", async () => {
    let pulled = 0;
    const { state, fetch } = fakeEndpoint([]);
    // An endless body: only the cap can end the read.
    state.body = () =>
      new Response(
        new ReadableStream<Uint8Array>({
          pull(controller) {
            pulled += 64 * 1024;
            controller.enqueue(new Uint8Array(64 * 1024).fill(0x20));
          },
        }),
      );
    const jwks = cache(fetch);
    const err = await jwks.resolveMissing("a").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JwksUnavailableError);
    expect(String((err as Error).cause)).toMatch(/too large/);
    expect(pulled).toBeLessThanOrEqual(MAX_JWKS_BYTES + 3 * 64 * 1024);
  });

  it("refuses a declared content-length past 1 MiB without reading the body", async () => {
    const { state, fetch } = fakeEndpoint([]);
    state.body = () =>
      new Response(JSON.stringify({ keys: [{ kid: "a", x: "1" }] }), {
        headers: { "content-length": String(MAX_JWKS_BYTES + 1) },
      });
    const err = await cache(fetch)
      .resolveMissing("a")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JwksUnavailableError);
    expect(String((err as Error).cause)).toMatch(/too large/);
  });
});
