import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  b64u,
  fuzzSigner,
  hostileHeader,
  hostileHeaderText,
  junkToken,
  mutated,
  nonObjectPayloadText,
} from "../../test-support/fuzz/jwt.js";
import { type VerifyResult, verifyCompact } from "./jws.js";

/**
 * Property tests of the compact JWS verifier: whatever arrives, the answer is a refusal given as a
 * result (never a throw), and only an untouched token Keyward signed passes.
 */
const signer = fuzzSigner();
const keys = new Map([[signer.kid, signer.publicKey]]);
const TYP = "at+jwt";
const header = { alg: "ES256", typ: TYP, kid: signer.kid };
const nowS = 1_780_000_000;
const claims = fc.record({
  sub: fc.string({ maxLength: 30 }),
  jti: fc.uuid(),
  scope: fc.string({ maxLength: 40 }),
  exp: fc.integer({ min: nowS, max: nowS + 86_400 }),
});

function verified(token: unknown): VerifyResult {
  let result: VerifyResult | undefined;
  expect(() => {
    result = verifyCompact(token, keys, TYP);
  }).not.toThrow();
  return result as VerifyResult;
}

function expectRefused(token: unknown): void {
  const r = verified(token);
  expect(r.ok, "a token the verifier must refuse was accepted").toBe(false);
  // The refusal is a typed code: it quotes no part of the token.
  if (!r.ok && typeof token === "string") {
    for (const part of token.split(".").filter((p) => p.length >= 8)) expect(JSON.stringify(r)).not.toContain(part);
  }
}

describe("compact JWS verification, fuzzed", () => {
  it("accepts the untouched token it signed (the control for every property below)", () => {
    fc.assert(
      fc.property(claims, (c) => {
        const r = verified(signer.compact(JSON.stringify(header), JSON.stringify(c)));
        expect(r.ok && r.value.payload).toEqual(c);
      }),
      { numRuns: 100 },
    );
  });

  it("refuses arbitrary strings, JWS-shaped junk and non-strings without throwing", () => {
    fc.assert(fc.property(junkToken, expectRefused), { numRuns: 1000 });
    fc.assert(fc.property(fc.anything(), expectRefused), { numRuns: 200 });
  });

  it("refuses any single change to a valid token, in any segment", () => {
    fc.assert(
      fc.property(
        claims.chain((c) => mutated(signer.compact(JSON.stringify(header), JSON.stringify(c)))),
        expectRefused,
      ),
      { numRuns: 1000 },
    );
  });

  it("refuses alg none/HS256/others, jku/jwk/x5u/x5c/crit, a wrong typ or kid, even validly signed", () => {
    fc.assert(
      fc.property(hostileHeader(header), claims, (h, c) => {
        expectRefused(signer.compact(JSON.stringify(h), JSON.stringify(c)));
      }),
      { numRuns: 500 },
    );
  });

  it("refuses headers that are not one JSON object, or whose last duplicate is hostile, even validly signed", () => {
    fc.assert(
      fc.property(hostileHeaderText(header), claims, (text, c) => {
        expectRefused(signer.compact(text, JSON.stringify(c)));
      }),
      { numRuns: 300 },
    );
  });

  it("refuses payloads that are not a UTF-8 JSON object, even validly signed", () => {
    const invalidUtf8 = fc.constantFrom("\xff", "\xc3\x28", "\xed\xa0\x80", "\xf8\x88\x80\x80\x80");
    fc.assert(
      fc.property(nonObjectPayloadText, (text) => {
        expectRefused(signer.compact(JSON.stringify(header), text));
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(invalidUtf8, claims, (bad, c) => {
        // A JSON object whose string holds bytes that are not UTF-8, signed as they are.
        const payload = Buffer.concat([
          Buffer.from('{"sub":"'),
          Buffer.from(bad, "latin1"),
          Buffer.from(`",${JSON.stringify(c).slice(1)}`),
        ]);
        expectRefused(signer.compact(JSON.stringify(header), payload));
      }),
      { numRuns: 20 },
    );
  });

  it("refuses a valid header and payload with any other signature", () => {
    fc.assert(
      fc.property(
        claims,
        fc.oneof(fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.uint8Array({ maxLength: 140 })),
        (c, sig) => {
          const [h, p] = signer.compact(JSON.stringify(header), JSON.stringify(c)).split(".");
          expectRefused(`${h}.${p}.${b64u(Buffer.from(sig))}`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("refuses huge segments, even validly signed", () => {
    fc.assert(
      fc.property(fc.integer({ min: 16 * 1024, max: 256 * 1024 }), fc.boolean(), (size, inHeader) => {
        const pad = randomBytes(Math.ceil(size / 2))
          .toString("hex")
          .slice(0, size);
        const token = inHeader
          ? signer.compact(JSON.stringify({ ...header, pad }), "{}")
          : signer.compact(JSON.stringify(header), JSON.stringify({ pad }));
        expectRefused(token);
      }),
      { numRuns: 40 },
    );
  });
});
