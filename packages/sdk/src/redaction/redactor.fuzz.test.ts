import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ESCAPERS } from "../../test-support/redaction/escaped-forms.js";
import { encodings } from "../../test-support/redaction/secret-forms.js";
import { createRedactor, DEFAULT_MARKER as M, type Redactor } from "./streaming-redactor.js";

/**
 * Property tests of the redactor against what an agent could decode: (a) a secret, however
 * repetitive, in any supported encoding inside other text, is always redacted; (b) a stream, cut
 * anywhere (inside escapes, inside the secret), gives exactly the one-pass output; (c) text that
 * holds no secret passes unchanged. The encodings come from test-support, written from the
 * encoders' rules, not from the redactor's.
 */

// Characters every scheme treats differently, and one for each UTF-8 length.
const SECRET_CHARS = [..."abcxyzABCXYZ0189", ..." &<>'\"/\\%+=-_~;#?", "\n", "ü", "€", "😀"];
const secretArb = fc
  .oneof(
    fc.array(fc.constantFrom(...SECRET_CHARS), { minLength: 8, maxLength: 40 }).map((cs) => cs.join("")),
    // Periodic and repetitive secrets: where a naive matcher is slow or wrong.
    fc
      .tuple(
        fc.array(fc.constantFrom(...SECRET_CHARS), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 8, max: 48 }),
      )
      .map(([unit, n]) => [...unit.join("").repeat(n)].slice(0, Math.max(8, n)).join("")),
  )
  .filter((s) => s.replace(/[\r\n]/g, "").length >= 8);

const FORMS = (secret: string): Record<string, string> => ({
  ...encodings(secret),
  ...Object.fromEntries(Object.entries(ESCAPERS).map(([name, escapeAs]) => [name, escapeAs(secret)])),
});
const FORM_NAMES = Object.keys(FORMS("x"));

// Around the secret: text without an escape introducer, so it cannot change how the form decodes.
const AROUND = [..."abcdefghijklmnopqrstuvwxyz0123456789 .,:;-_()[]{}"];
const aroundArb = fc.array(fc.constantFrom(...AROUND), { maxLength: 30 }).map((cs) => cs.join(""));

function streamed(r: Redactor, bytes: Buffer, cuts: number[]): { output: string; count: number } {
  const s = r.stream();
  const out: Buffer[] = [];
  let at = 0;
  for (const cut of [...cuts.map((c) => c % (bytes.length + 1))].sort((a, b) => a - b)) {
    out.push(s.push(bytes.subarray(at, Math.max(at, cut))));
    at = Math.max(at, cut);
  }
  out.push(s.push(bytes.subarray(at)), s.end());
  return { output: Buffer.concat(out).toString("utf8"), count: s.count };
}

describe("redactor properties", () => {
  it("(a) redacts a secret in any supported encoding, anywhere in other text", () => {
    fc.assert(
      fc.property(secretArb, fc.constantFrom(...FORM_NAMES), aroundArb, aroundArb, (secret, name, before, after) => {
        const form = FORMS(secret)[name] as string;
        const r = createRedactor([secret]);
        const { output, count } = r.redactString(`${before} ${form} ${after}`);
        expect(count).toBeGreaterThanOrEqual(1);
        expect(output).toContain(M);
        expect(output).not.toContain(form);
        expect(output.replace(/[\r\n]/g, "")).not.toContain(secret.replace(/[\r\n]/g, ""));
      }),
      { numRuns: 400 },
    );
  });

  it("(b) streams with the one-pass output and count, however the input is cut", () => {
    // Text dense with escapes and fragments of escapes, so cuts fall inside them.
    const junk = fc.constantFrom(
      ..."az09 +/=\r\n",
      "%",
      "%4",
      "%41",
      "%2F",
      "\\",
      "\\u00",
      "\\u0041",
      "\\n",
      "\\\\",
      "&",
      "&am",
      "&amp;",
      "&#3",
      "&#38;",
      "&#x2f;",
      "&lt",
    );
    const piece = (secret: string) => fc.oneof(junk, fc.constantFrom(...Object.values(FORMS(secret))));
    const arb = secretArb.chain((secret) =>
      fc.tuple(fc.constant(secret), fc.array(piece(secret), { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 12 })),
    );
    fc.assert(
      fc.property(arb, ([secret, pieces, cuts]) => {
        const r = createRedactor([secret]);
        const bytes = Buffer.from(pieces.join(""));
        const once = r.redact(bytes);
        expect(streamed(r, bytes, cuts)).toEqual({ output: once.output.toString("utf8"), count: once.count });
      }),
      { numRuns: 400 },
    );
  });

  it("(c) passes text without the secret unchanged, escapes and all", () => {
    const arb = secretArb.chain((secret) => {
      const others = [..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;-_!*@$^|\r\n%&\\"].filter(
        (c) => !secret.includes(c),
      );
      // Characters the secret does not hold, plain or escaped in any scheme.
      const ch = fc.constantFrom(...others);
      const escaped = fc.tuple(ch, fc.constantFrom(...Object.values(ESCAPERS))).map(([c, escapeAs]) => escapeAs(c));
      return fc.tuple(
        fc.constant(secret),
        fc.array(fc.oneof(ch, escaped), { maxLength: 80 }),
        fc.array(fc.nat(), { maxLength: 8 }),
      );
    });
    fc.assert(
      fc.property(arb, ([secret, parts, cuts]) => {
        const r = createRedactor([secret]);
        const text = parts.join("");
        expect(r.redactString(text)).toEqual({ output: text, count: 0 });
        expect(streamed(r, Buffer.from(text), cuts)).toEqual({ output: text, count: 0 });
      }),
      { numRuns: 300 },
    );
  });
});
