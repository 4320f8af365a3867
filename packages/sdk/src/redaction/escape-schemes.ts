import type { Escape, EscapeScheme } from "./escape-view.js";
import { NAMED_REFERENCES, WITHOUT_SEMICOLON } from "./html-entities.js";

/**
 * The escaping schemes the redactor undoes (escape-view.ts): URL percent-encoding, JSON string
 * escapes, HTML character references. Each reader accepts what a decoder of its scheme accepts
 * (any hex case, any character escaped or not, leading zeros), so it does not matter which
 * characters an encoder chose to escape.
 *
 * A decoded CR or LF decodes to nothing, as the text's own line breaks are removed before
 * matching (line-breaks.ts): a PEM key with `\n` in JSON is then the PEM key again.
 */

const LF = 0x0a;
const CR = 0x0d;
/** Digits a numeric reference may have, leading zeros included: bounds an escape's length. */
const MAX_DIGITS = 16;

/** Each byte's value as a hex digit, -1 if it is not one: a lookup, as this runs for every escape. */
const HEX = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let d = 0; d < 10; d++) t[0x30 + d] = d;
  for (let d = 0; d < 6; d++) {
    t[0x41 + d] = 10 + d;
    t[0x61 + d] = 10 + d;
  }
  return t;
})();

function hexValue(b: number | undefined): number {
  return b === undefined ? -1 : (HEX[b] as number);
}

/** Writes `cp` as UTF-8 (a line break as nothing); the number of bytes written. */
function writeCodePoint(cp: number, out: Buffer, at: number): number {
  if (cp === LF || cp === CR) return 0;
  if (cp < 0x80) {
    out[at] = cp;
    return 1;
  }
  if (cp < 0x800) {
    out[at] = 0xc0 | (cp >> 6);
    out[at + 1] = 0x80 | (cp & 0x3f);
    return 2;
  }
  if (cp < 0x10000) {
    out[at] = 0xe0 | (cp >> 12);
    out[at + 1] = 0x80 | ((cp >> 6) & 0x3f);
    out[at + 2] = 0x80 | (cp & 0x3f);
    return 3;
  }
  out[at] = 0xf0 | (cp >> 18);
  out[at + 1] = 0x80 | ((cp >> 12) & 0x3f);
  out[at + 2] = 0x80 | ((cp >> 6) & 0x3f);
  out[at + 3] = 0x80 | (cp & 0x3f);
  return 4;
}

const literal = (found: Escape): true => {
  found.length = 0;
  found.decoded = 0;
  return true;
};

/** `%XX`, either hex case, one byte each (so `%C3%BC` is ü); `+` stays `+` (see secret-encodings.ts). */
export const PERCENT: EscapeScheme = {
  introducer: 0x25,
  read(src, at, final, out, outAt, found) {
    const hi = hexValue(src[at + 1]);
    const lo = hexValue(src[at + 2]);
    if (hi >= 0 && lo >= 0) {
      const b = hi * 16 + lo;
      found.length = 3;
      found.decoded = b === LF || b === CR ? 0 : 1;
      out[outAt] = b;
      return true;
    }
    // `%` or `%X` at the end: the next chunk may complete it.
    if (!final && at + 2 >= src.length && (at + 1 >= src.length || hi >= 0)) return false;
    return literal(found);
  },
};

/** What `\x` decodes to for each JSON escape letter `x`, -1 for none (`u` is read apart). */
const JSON_SIMPLE = (() => {
  const t = new Int16Array(256).fill(-1);
  t[0x22] = 0x22; // \"
  t[0x5c] = 0x5c; // \\
  t[0x2f] = 0x2f; // \/
  t[0x62] = 0x08; // \b
  t[0x66] = 0x0c; // \f
  t[0x6e] = LF; // \n
  t[0x72] = CR; // \r
  t[0x74] = 0x09; // \t
  return t;
})();

/** Four hex digits at `at` as a number; -1 if not; -2 if the input ends before they do. */
function hex4(src: Uint8Array, at: number): number {
  let v = 0;
  for (let k = 0; k < 4; k++) {
    if (at + k >= src.length) return -2;
    const h = hexValue(src[at + k]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

/** JSON string escapes: `\n`, `\/`, … and `\uXXXX` (either case; a surrogate pair is one character). */
export const JSON_STRING: EscapeScheme = {
  introducer: 0x5c,
  read(src, at, final, out, outAt, found) {
    if (at + 1 >= src.length) return final ? literal(found) : false;
    const kind = src[at + 1] as number;
    const simple = JSON_SIMPLE[kind] as number;
    if (simple !== -1) {
      found.length = 2;
      found.decoded = writeCodePoint(simple, out, outAt);
      return true;
    }
    if (kind !== 0x75) return literal(found);
    const unit = hex4(src, at + 2);
    if (unit === -2) return final ? literal(found) : false;
    if (unit < 0) return literal(found);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      // A high surrogate means something only with the low one after it.
      const b6 = src[at + 6];
      const b7 = src[at + 7];
      if (b6 === 0x5c && b7 === 0x75) {
        const low = hex4(src, at + 8);
        if (low === -2) return final ? literal(found) : false;
        if (low >= 0xdc00 && low <= 0xdfff) {
          found.length = 12;
          found.decoded = writeCodePoint(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00), out, outAt);
          return true;
        }
      } else if (!final && (b6 === undefined || (b6 === 0x5c && b7 === undefined))) return false;
      return literal(found);
    }
    if (unit >= 0xdc00 && unit <= 0xdfff) return literal(found);
    found.length = 6;
    found.decoded = writeCodePoint(unit, out, outAt);
    return true;
  },
};

const isDigit = (b: number | undefined) => b !== undefined && b >= 0x30 && b <= 0x39;

/** HTML character references: `&#38;` `&#x26;` `&#X0026;` (`;` optional, as browsers read them), `&amp;`. */
export const HTML_REFERENCE: EscapeScheme = {
  introducer: 0x26,
  read(src, at, final, out, outAt, found) {
    let j = at + 1;
    if (j >= src.length) return final ? literal(found) : false;
    if (src[j] === 0x23) {
      j++;
      const hex = src[j] === 0x78 || src[j] === 0x58;
      if (hex) j++;
      const first = j;
      let cp = 0;
      for (; j < src.length && j - first < MAX_DIGITS; j++) {
        const d = hex ? hexValue(src[j]) : isDigit(src[j]) ? (src[j] as number) - 0x30 : -1;
        if (d < 0) break;
        cp = cp * (hex ? 16 : 10) + d;
      }
      // Digits (or `&#`, `&#x`) up to the end: more may come.
      if (j >= src.length && !final) return false;
      if (j === first || cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return literal(found);
      if (src[j] === 0x3b) j++;
      found.length = j - at;
      found.decoded = writeCodePoint(cp, out, outAt);
      return true;
    }
    // A name: walked in a trie of the known ones, so nothing is allocated per `&`.
    let node = 0;
    let legacyEnd = -1;
    let legacyValue = 0;
    for (;;) {
      if (j >= src.length) {
        if (!final) return false; // `&am` at the end: `p;` may follow
        break;
      }
      const b = src[j] as number;
      if (b === 0x3b && (NAMES.value[node] as number) >= 0) {
        found.length = j + 1 - at;
        found.decoded = writeCodePoint(NAMES.value[node] as number, out, outAt);
        return true;
      }
      const child = b < 0x80 ? (NAMES.next[node * 0x80 + b] as number) : 0;
      if (child === 0) break;
      node = child;
      j++;
      if (NAMES.legacy[node] === 1) {
        legacyEnd = j;
        legacyValue = NAMES.value[node] as number;
      }
    }
    if (legacyEnd === -1) return literal(found);
    found.length = legacyEnd - at;
    found.decoded = writeCodePoint(legacyValue, out, outAt);
    return true;
  },
};

/** The named references as a trie over ASCII: child links, each node's code point (-1: no name ends there). */
const NAMES = (() => {
  const next: number[] = new Array(0x80).fill(0);
  const value: number[] = [-1];
  const legacy: number[] = [0];
  for (const [name, text] of NAMED_REFERENCES) {
    let node = 0;
    for (const ch of name) {
      const slot = node * 0x80 + ch.charCodeAt(0);
      if (next[slot] === 0) {
        next[slot] = value.length;
        value.push(-1);
        legacy.push(0);
        next.push(...new Array(0x80).fill(0));
      }
      node = next[slot] as number;
    }
    value[node] = text.codePointAt(0) as number;
    if (WITHOUT_SEMICOLON.includes(name)) legacy[node] = 1;
  }
  return { next: Int32Array.from(next), value: Int32Array.from(value), legacy: Uint8Array.from(legacy) };
})();

export const ESCAPE_SCHEMES: readonly EscapeScheme[] = [PERCENT, JSON_STRING, HTML_REFERENCE];
