import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkForwardedPath, MAX_DECODES, PATH_REFUSAL_MESSAGES } from "./path-safety.js";

/**
 * Property tests of the one path-safety rule (gateway, egress, forward-auth): whatever path it
 * accepts, no reading a server behind Keyward might make of it climbs above the base it is
 * appended to. The readings are modelled independently of the checker: WHATWG URL resolution,
 * and decode-then-normalize chains as nginx, Tomcat or Spring do them (up to 4 %-decodings,
 * lenient UTF-8 that accepts overlong forms, NFKC, IIS's %uXXXX, `\` as `/`, `;params` dropped,
 * a raw `?`/`#` cutting the path).
 */

const SAFE = [
  "a",
  "b",
  "v1",
  "x.json",
  "@me",
  ":",
  ";v=1",
  "%20",
  "%41",
  "group%2Fproject",
  "%E2%9C%93",
  ".hidden",
  "..x",
  "-",
];
const NASTY = [
  ".",
  "..",
  "..;",
  ".;",
  "..;x",
  "%2e",
  "%2E",
  "%252e",
  "%252E",
  "%25252e",
  "%2525252e",
  "%252525252e",
  "%c0%ae",
  "%C0%AE",
  "%e0%80%ae",
  "%f0%80%80%ae",
  "%25c0%25ae",
  "\uff0e",
  "%ef%bc%8e",
  "%e2%80%a5",
  "%u002e",
  "%25u002e",
  "\\",
  "%5c",
  "%5C",
  "%255c",
  "%2f",
  "%252f",
  "%ef%bc%8f",
  "%c0%af",
  "%3b",
  "%3f",
  "%23",
  "%253f",
  "%00",
  "%0a",
  "%09",
  "",
];

const segment = (atoms: string[]) => fc.array(fc.constantFrom(...atoms), { minLength: 1, maxLength: 3 });
const pathOf = (atoms: string[]) =>
  fc
    .tuple(fc.array(segment(atoms), { minLength: 1, maxLength: 6 }), fc.boolean())
    .map(([segs, trailing]) => `/${segs.map((s) => s.join("")).join("/")}${trailing ? "/" : ""}`);

const BASE = "/base";
const ORIGIN = "http://upstream.example";

/** One layer of %-decoding into bytes (latin1), as a server that decodes once more would. */
const decodeOnce = (s: string) =>
  s.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));

/** UTF-8 as a careless decoder reads it: overlong forms accepted (`c0 ae` is "."). */
function lenientUtf8(bytes: string): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes.charCodeAt(i);
    const n = b >= 0xf0 && b <= 0xf7 ? 3 : b >= 0xe0 ? (b <= 0xef ? 2 : 0) : b >= 0xc0 ? 1 : 0;
    let cp = b & (0x3f >> n);
    let k = 1;
    for (; k <= n && (bytes.charCodeAt(i + k) & 0xc0) === 0x80; k++) cp = (cp << 6) | (bytes.charCodeAt(i + k) & 0x3f);
    if (n > 0 && k > n && cp <= 0x10ffff) {
      out += String.fromCodePoint(cp);
      i += n;
    } else out += bytes[i];
  }
  return out;
}

/** Every string some server might resolve for `path`. */
function readings(path: string): string[] {
  const out: string[] = [];
  let layer = path;
  for (let k = 0; k <= MAX_DECODES; k++) {
    const text = lenientUtf8(layer);
    const iis = text.replace(/%u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    for (const v of [layer, text, text.normalize("NFKC"), iis, iis.normalize("NFKC")]) {
      out.push(v, v.split(/[?#]/)[0] as string);
    }
    layer = decodeOnce(layer);
  }
  return out;
}

/**
 * RFC 3986 dot-segment removal, with `\` as `/`, `;params` dropped (Tomcat), trailing spaces
 * dropped (Windows) and `//` merged (nginx).
 */
function climbs(reading: string): boolean {
  let depth = 0;
  for (const raw of reading.replaceAll("\\", "/").split("/").slice(1)) {
    const seg = (raw.split(";")[0] as string).replace(/ +$/, "");
    if (seg === "..") depth--;
    else if (seg !== "." && seg !== "") depth++;
    if (depth < 0) return true;
  }
  return false;
}

/** What a WHATWG URL parser makes of base + reading: must keep the origin and stay under /base. */
function whatwgEscapes(reading: string): boolean {
  let joined: URL;
  let rooted: URL;
  try {
    joined = new URL(`${ORIGIN}${BASE}${reading}`);
    rooted = new URL(reading, ORIGIN);
  } catch {
    return false; // unparseable: nothing is requested anywhere
  }
  const under = joined.pathname === BASE || joined.pathname.startsWith(`${BASE}/`);
  return joined.origin !== ORIGIN || !under || rooted.origin !== ORIGIN;
}

describe("checkForwardedPath, fuzzed", () => {
  it("never accepts a path that some reading resolves above the base", () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(pathOf([...SAFE, ...NASTY]), (path) => {
        const r = checkForwardedPath(path);
        if (!r.ok) {
          refused++;
          return;
        }
        accepted++;
        for (const reading of readings(path)) {
          expect({ path, reading, climbs: climbs(reading) }).toEqual({ path, reading, climbs: false });
          expect({ path, reading, whatwg: whatwgEscapes(reading) }).toEqual({ path, reading, whatwg: false });
        }
      }),
      { numRuns: 20_000 },
    );
    // Not vacuous: both outcomes were exercised in numbers.
    expect(accepted).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(10_000);
  });

  it("accepts every path built only from what real APIs use", () => {
    fc.assert(
      fc.property(pathOf(SAFE), (path) => {
        expect({ path, r: checkForwardedPath(path) }).toEqual({ path, r: { ok: true } });
      }),
      { numRuns: 5_000 },
    );
  });

  it("answers any string with ok or a known reason, never a throw", () => {
    const reasons = new Set(Object.keys(PATH_REFUSAL_MESSAGES));
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: "binary", maxLength: 200 }), pathOf(NASTY)), (path) => {
        const r = checkForwardedPath(path);
        expect(r.ok || reasons.has(r.reason)).toBe(true);
      }),
      { numRuns: 5_000 },
    );
  });
});
