import * as crypto from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { AUDIENCE, startIssuer, type TestIssuer } from "../../test-support/verify/issuer.js";
import { lowSToken } from "../jose/low-s.js";
import { verifier } from "./verifier.js";

// Counts the verifier's signature checks, so a test can see whether a token was a cache hit.
vi.mock("node:crypto", async (original) => {
  const real = await original<typeof import("node:crypto")>();
  return { ...real, verify: vi.fn(real.verify) };
});
const signatureChecks = () => vi.mocked(crypto.verify).mock.calls.length;

const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const parts = (token: string) => {
  const dot = token.lastIndexOf(".");
  return { input: token.slice(0, dot), sig: Buffer.from(token.slice(dot + 1), "base64url") };
};
const sOf = (token: string) => BigInt(`0x${parts(token).sig.subarray(32).toString("hex")}`);

/** The other valid ES256 signature over the same bytes: (r, n − s). */
function flip(token: string): string {
  const { input, sig } = parts(token);
  const s = Buffer.from((N - sOf(token)).toString(16).padStart(64, "0"), "hex");
  return `${input}.${Buffer.concat([sig.subarray(0, 32), s]).toString("base64url")}`;
}

let issuer: TestIssuer;
beforeAll(async () => {
  issuer = await startIssuer();
});
afterAll(() => issuer.close());

describe("ES256 malleability in the SDK verifier", () => {
  it("accepts a token and its flipped copy as one token: same claims, one cache entry", async () => {
    const v = verifier({ issuer: issuer.url, audience: AUDIENCE });
    await v.refresh();
    const token = await issuer.token();
    const [low, high] = sOf(token) <= N / 2n ? [token, flip(token)] : [flip(token), token];

    const before = signatureChecks();
    const first = await v.verify(high); // as an older Keyward may have signed it: accepted
    expect(signatureChecks()).toBe(before + 1);
    expect(await v.verify(low)).toBe(first); // the same cached result, no second signature check
    expect(await v.verify(high)).toBe(first);
    expect(signatureChecks()).toBe(before + 1);
    expect(first.claims.jti).toBeTypeOf("string");
  });

  it("maps a high-S signature to its low-S twin, and leaves low-S and impossible ones alone", async () => {
    const token = await issuer.token();
    const high = sOf(token) > N / 2n ? token : flip(token);
    const low = flip(high);
    const { input, sig } = parts(high);
    expect(lowSToken(input, sig)).toBe(low);
    expect(lowSToken(input, parts(low).sig)).toBeUndefined();
    const huge = Buffer.concat([sig.subarray(0, 32), Buffer.alloc(32, 0xff)]); // s ≥ n: not a signature
    expect(lowSToken(input, huge)).toBeUndefined();
  });

  it("never maps an EdDSA token: its signature is not an (r, s) pair", async () => {
    const ed = await issuer.rotate("EdDSA");
    const v = verifier({ issuer: issuer.url, audience: AUDIENCE, algorithms: ["ES256", "EdDSA"] });
    await v.refresh();
    const token = await issuer.token({}, {}, ed);
    await v.verify(token);
    // A "flipped" Ed25519 signature is just a wrong one, cached or not.
    await expect(v.verify(flip(token))).rejects.toMatchObject({ code: "invalid_token" });
  });
});
