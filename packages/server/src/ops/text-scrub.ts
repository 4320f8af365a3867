// The one string scrubber, for everything Keyward writes out about a request: audit records
// (audit/audit-scrub.ts builds on it) and log lines (http/server.ts). Below both, so neither
// imports the other. Secrets are masked, control and bidi characters escaped, length bounded.

/** Keyward's own secrets: API keys, admin tokens, refresh tokens. */
const KW_SECRET = /kw[karc]_[0-9A-Za-z]{20,}/g;
/** A compact JWS (access tokens, upstream tokens): its signature makes it a bearer credential. */
const JWT = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g;

/** Keeps a recognisable prefix (`kwk_` + 8 chars, like a key's stored prefix) and drops the rest. */
function mask(match: string): string {
  return `${match.slice(0, 12)}…`;
}

/** Any other string (a value inside `details`, a log field): longer ones are cut. */
export const MAX_STRING_CHARS = 1024;

/**
 * C0 and C1 controls, DEL, the bidi embeddings, overrides, isolates and marks (U+202A–U+202E,
 * U+2066–U+2069, U+200E/F, U+061C), line/paragraph separators, and lone surrogates (which no
 * store keeps as written). NUL in particular cannot be stored in PostgreSQL text, and one such
 * event would fail its whole batch.
 */
const UNSAFE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  /[\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const UNSAFE_TEST = new RegExp(UNSAFE.source);

/** Escaped as the six characters `\uXXXX`, readable and inert everywhere a record is shown. */
function escapeChar(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/** Cut to `max` characters plus `…`, never between the two halves of a surrogate pair. */
function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  const code = s.charCodeAt(max - 1);
  const end = code >= 0xd800 && code <= 0xdbff ? max - 1 : max;
  return `${s.slice(0, end)}…`;
}

/** Control and bidi characters escaped, secrets masked, cut to `max` characters. */
export function scrubString(s: string, max: number = MAX_STRING_CHARS): string {
  // Cut first (with room for escapes) so the work below is bounded by `max`, not by the input.
  let out = cut(s, max * 6);
  if (UNSAFE_TEST.test(out)) out = out.replace(UNSAFE, escapeChar);
  // The cheap test first: almost every string has neither marker, and replace() would copy it.
  if (out.includes("kw") || out.includes("eyJ")) out = out.replace(KW_SECRET, mask).replace(JWT, mask);
  return cut(out, max);
}
