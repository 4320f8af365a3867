import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { codeToStatus, KeywardError } from "../errors.js";
import { decodeCursor, encodeCursor } from "./audit-event.js";

/**
 * Property tests of the `GET /admin/v1/audit?cursor=` cursor: any string is either the seq of a
 * page's last event or a 400 invalid_request, and every cursor a page gives out decodes back.
 */
const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n));
const B64U = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const b64u = (s: string) => Buffer.from(s).toString("base64url");
const anyCursor = fc.oneof(
  fc.string({ unit: "binary", maxLength: 60 }),
  fc.string({ unit: anyUnit, maxLength: 60 }),
  fc.string({ unit: fc.constantFrom(...B64U, "=", "+", "/"), maxLength: 128 }),
  // Near misses: the right prefix with a seq that is not one (zero, sign, too long, junk around it).
  fc
    .tuple(
      fc.constantFrom("a", "A", "", " a", "aa"),
      fc.oneof(fc.bigInt({ min: -10n, max: 10n ** 17n }).map(String), fc.string({ maxLength: 5 })),
      fc.constantFrom("", " ", "\n", "\u0000", ".0"),
    )
    .map(([p, n, s]) => b64u(p + n + s)),
  fc.nat().map((n) => `${b64u(`a${n}`)}=`),
);

function decoded(cursor: string): number | KeywardError {
  try {
    return decodeCursor(cursor);
  } catch (err) {
    expect(err).toBeInstanceOf(KeywardError);
    expect((err as KeywardError).code).toBe("invalid_request");
    expect(codeToStatus((err as KeywardError).code)).toBe(400);
    return err as KeywardError;
  }
}

describe("audit list cursor, fuzzed", () => {
  it("answers any cursor with a positive seq it encodes exactly, or 400 invalid_request", () => {
    fc.assert(
      fc.property(anyCursor, (cursor) => {
        const r = decoded(cursor);
        if (r instanceof KeywardError) return;
        expect(Number.isSafeInteger(r) && r > 0).toBe(true);
        expect(encodeCursor(r)).toBe(cursor);
      }),
      { numRuns: 1000 },
    );
  });

  it("decodes every cursor a page gives out to its seq", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 ** 15 - 1 }), (seq) => {
        expect(decoded(encodeCursor(seq))).toBe(seq);
      }),
      { numRuns: 300 },
    );
  });
});
