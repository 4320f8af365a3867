import { crc32 as zlibCrc32 } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { generateSecret, isWellFormed, legacyHashSecret, type SecretKind } from "./secret-format.js";

/**
 * Property tests of the `kwk_`/`kwa_`/`kwr_` format (SPEC §2). The secrets a caller presents are
 * attacker input: every variation of a valid one is refused, and nothing makes the check throw.
 */
const KINDS: readonly SecretKind[] = ["kwk", "kwa", "kwr"];
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const kind = fc.constantFrom(...KINDS);
const base62 = (length: number) =>
  fc.array(fc.constantFrom(...BASE62), { minLength: length, maxLength: length }).map((c) => c.join(""));
/** Any single UTF-16 unit, so lone surrogates and control characters come up too. */
const anyChar = fc.oneof(
  fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
  fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n)),
);
const anyString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.string({ unit: "grapheme", maxLength: 80 }),
  fc.array(anyChar, { maxLength: 60 }).map((c) => c.join("")),
);

/** The checksum as SPEC §2 words it, written from the spec rather than from secret-format.ts. */
function specChecksum(body: string): string {
  let n = zlibCrc32(body);
  let out = "";
  for (let i = 0; i < 6; i++) {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** Runs `isWellFormed`, failing the property if it throws. */
function judged(secret: string, k: SecretKind): boolean {
  let result: boolean | undefined;
  expect(() => {
    result = isWellFormed(secret, k);
  }).not.toThrow();
  return result as boolean;
}

describe("secret format, fuzzed", () => {
  it("accepts every generated secret for its own kind only", () => {
    fc.assert(
      fc.property(kind, kind, (k, other) => {
        const secret = generateSecret(k);
        expect(secret).toMatch(new RegExp(`^${k}_[0-9A-Za-z]{38}$`));
        expect(judged(secret, k)).toBe(true);
        expect(judged(secret, other)).toBe(k === other);
      }),
      { numRuns: 300 },
    );
  });

  it("accepts exactly the bodies whose checksum is CRC32 in base62 as the spec defines it", () => {
    fc.assert(
      fc.property(kind, base62(32), base62(6), (k, body, check) => {
        expect(judged(`${k}_${body}${specChecksum(body)}`, k)).toBe(true);
        expect(judged(`${k}_${body}${check}`, k)).toBe(check === specChecksum(body));
      }),
      { numRuns: 500 },
    );
  });

  it("refuses any single-character change, anywhere, to any character", () => {
    fc.assert(
      fc.property(kind, fc.nat({ max: 41 }), anyChar, (k, at, c) => {
        const secret = generateSecret(k);
        fc.pre(secret[at] !== c);
        expect(judged(secret.slice(0, at) + c + secret.slice(at + 1), k)).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it("refuses truncations, extensions, insertions and deletions", () => {
    fc.assert(
      fc.property(
        kind,
        fc.nat({ max: 42 }),
        fc.string({ unit: "binary", minLength: 1, maxLength: 40 }),
        fc.nat({ max: 41 }),
        (k, keep, extra, at) => {
          const secret = generateSecret(k);
          if (keep < 42) expect(judged(secret.slice(0, keep), k)).toBe(false);
          expect(judged(secret + extra, k)).toBe(false);
          expect(judged(extra + secret, k)).toBe(false);
          expect(judged(secret.slice(0, at) + extra + secret.slice(at), k)).toBe(false);
          expect(judged(secret.slice(0, at) + secret.slice(at + 1), k)).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("refuses a valid body and checksum behind any other prefix", () => {
    fc.assert(
      fc.property(
        kind,
        fc.oneof(anyString, fc.constantFrom("kwk_", "kwa_", "kwr_", "KWK_", "kwk-", "kw_", "kwkk_")),
        (k, prefix) => {
          fc.pre(prefix !== `${k}_`);
          const secret = generateSecret(k);
          expect(judged(prefix + secret.slice(4), k)).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("never throws on arbitrary strings, and accepts only the exact shape", () => {
    const huge = fc
      .tuple(fc.string({ unit: "binary", minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 200_000 }))
      .map(([s, n]) => s.repeat(n));
    // Strings of the right length and prefix, so the shape and checksum paths are reached too.
    const nearMiss = fc
      .tuple(kind, fc.array(fc.oneof(fc.constantFrom(...BASE62), anyChar), { minLength: 38, maxLength: 38 }))
      .map(([k, c]) => `${k}_${c.join("")}`);
    fc.assert(
      fc.property(fc.oneof(anyString, huge, nearMiss), kind, (s, k) => {
        if (judged(s, k)) {
          expect(s).toMatch(new RegExp(`^${k}_[0-9A-Za-z]{38}$`));
          expect(s.slice(36)).toBe(specChecksum(s.slice(4, 36)));
        }
      }),
      { numRuns: 600 },
    );
  });

  it("hashes deterministically to SHA-256 hex, and a one-character change to another hash", () => {
    const wellFormed = (s: string) => !/\p{Cs}/u.test(s);
    fc.assert(
      fc.property(fc.oneof(anyString, kind.map(generateSecret)), fc.nat(), anyChar, (a, at, c) => {
        const h = legacyHashSecret(a);
        expect(h).toMatch(/^[0-9a-f]{64}$/);
        expect(legacyHashSecret(a)).toBe(h);
        const i = a.length === 0 ? 0 : at % a.length;
        const b = a.slice(0, i) + c + a.slice(i + 1);
        // Lone surrogates all encode to U+FFFD in UTF-8; only well-formed strings are distinct bytes.
        if (a !== b && wellFormed(a) && wellFormed(b)) expect(legacyHashSecret(b)).not.toBe(h);
      }),
      { numRuns: 500 },
    );
  });
});
