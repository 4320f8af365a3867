import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { codeToStatus, KeywardError } from "../errors.js";
import { parseCursor } from "./agent-view.js";

/**
 * Property tests of the agent credential cursors: `GET /v1/credentials?since=` and the
 * `Last-Event-ID` of `/v1/credentials/events` (trimmed by the route, then parsed the same way).
 * Any value is either a cursor or a 400 invalid_request; nothing else escapes the parser.
 */
const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n));
const digits = fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: 1, maxLength: 20 });
const anyValue = fc.oneof(
  fc.string({ unit: "binary", maxLength: 60 }),
  fc.string({ unit: anyUnit, maxLength: 60 }),
  digits,
  fc
    .tuple(
      fc.constantFrom("", " ", "\t", "+", "-", "0", "0x", "\u00a0"),
      digits,
      fc.constantFrom("", " ", ".0", "e1", "n"),
    )
    .map((p) => p.join("")),
  fc.constantFrom("", "0", "00", "-0", "1e3", "Infinity", "NaN", "9007199254740991", "99999999999999999"),
);

/** The parser's answer: a number, undefined, or the error (any throw but invalid_request fails). */
function parsed(raw: string | null | undefined, where: string): number | undefined | KeywardError {
  try {
    return parseCursor(raw, where);
  } catch (err) {
    expect(err).toBeInstanceOf(KeywardError);
    expect((err as KeywardError).code).toBe("invalid_request");
    expect(codeToStatus((err as KeywardError).code)).toBe(400);
    return err as KeywardError;
  }
}

describe("credential cursors (?since= and Last-Event-ID), fuzzed", () => {
  it("answers any value with a non-negative integer cursor or 400 invalid_request", () => {
    fc.assert(
      fc.property(anyValue, fc.boolean(), (raw, asHeader) => {
        const r = asHeader ? parsed(raw.trim(), "Last-Event-ID") : parsed(raw, "query.since");
        if (r instanceof KeywardError) return;
        expect(Number.isInteger(r) && (r as number) >= 0).toBe(true);
      }),
      { numRuns: 1000 },
    );
    expect(parsed(null, "query.since")).toBeUndefined();
    expect(parsed(undefined, "query.since")).toBeUndefined();
  });

  it("accepts every cursor the server gives out, also as a padded Last-Event-ID", () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.constantFrom("", " ", "\t", "  "), (n, pad) => {
        expect(parsed(String(n), "query.since")).toBe(n);
        expect(parsed(`${pad}${n}${pad}`.trim(), "Last-Event-ID")).toBe(n);
      }),
      { numRuns: 500 },
    );
  });

  // Found by fuzzing: 16 digits are more than a double holds exactly, and "9007199254740993" used to
  // be accepted as 9007199254740992; an unsafe integer is now refused.
  it("accepts a cursor only as the very number it spells", () => {
    fc.assert(
      fc.property(fc.oneof(anyValue, digits), (raw) => {
        const r = parsed(raw, "query.since");
        if (typeof r === "number") expect(String(r)).toBe(raw);
      }),
      { numRuns: 300, examples: [["9007199254740993"]] },
    );
  });
});
