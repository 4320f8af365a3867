/**
 * Secret hygiene for audit records, defence in depth: callers must never hand the audit log a
 * secret, but if one slips through it is masked before it is stored (and hashed into the chain,
 * after which it could never be removed without breaking the chain).
 *
 * It is also the one place that bounds what an outsider can put in a record (issue 18, finding 3):
 * every string is cut to a stated length, and control and bidi characters are escaped, so a
 * 15 KB agent name cannot grow the table by its size, and a U+202E in a header cannot reorder
 * what an operator reads in a terminal or the console. Every record passes here on the way in
 * (audit-event.ts `toRow`), whatever route built it.
 */

/** Keys whose values are never stored, whatever they hold. */
const SECRET_KEY = /secret|token|password|value|authorization|api_?key|credential_value/i;
/** Keyward's own secrets: API keys, admin tokens, refresh tokens. */
const KW_SECRET = /kw[kar]_[0-9A-Za-z]{20,}/g;
/** A compact JWS (access tokens, upstream tokens): its signature makes it a bearer credential. */
const JWT = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g;

export const REDACTED = "[redacted]";
const MAX_DEPTH = 8;
/** A runaway details object must not bloat the table; it is replaced by a marker. */
export const MAX_DETAILS_CHARS = 16 * 1024;

/** Keeps a recognisable prefix (`kwk_` + 8 chars, like a key's stored prefix) and drops the rest. */
function mask(match: string): string {
  return `${match.slice(0, 12)}…`;
}

/**
 * The longest each column may hold (characters, before the `…` of a cut). An actor or target is a
 * principal or `kind:name` (names are slugs of ≤ 63; a user id from an IdP `sub` ≤ 255); an ip is
 * at most 45 characters (IPv6 with an IPv4 tail); request ids are ours (a UUID) or a caller's.
 */
export const FIELD_LIMITS = {
  actor: 300,
  action: 64,
  target: 300,
  code: 64,
  ip: 64,
  request_id: 128,
} as const;
export type AuditField = keyof typeof FIELD_LIMITS;
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

/** One column of a record, scrubbed and cut to its limit (FIELD_LIMITS). */
export function scrubField(field: AuditField, s: string): string {
  return scrubString(s, FIELD_LIMITS[field]);
}

/** A scrubbed, JSON-safe copy of `details`: secret-named keys redacted, secret-shaped strings masked. */
export function scrubDetails(details: Record<string, unknown>): Record<string, unknown> {
  return scrubObject(details, 0);
}

function scrubObject(obj: Record<string, unknown>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    if (value === undefined || typeof value === "function" || typeof value === "symbol") continue;
    out[scrubString(key)] = SECRET_KEY.test(key) ? REDACTED : scrubValue(value, depth + 1);
  }
  return out;
}

function scrubValue(value: unknown, depth: number): unknown {
  let v = value;
  if (typeof v === "object" && v !== null && typeof (v as { toJSON?: unknown }).toJSON === "function") {
    v = (v as { toJSON: () => unknown }).toJSON();
  }
  if (typeof v === "string") return scrubString(v);
  if (typeof v === "bigint") return v.toString();
  if (typeof v !== "object" || v === null) return v;
  // Depth also bounds cycles: a self-referencing object ends here instead of overflowing the stack.
  if (depth >= MAX_DEPTH) return "[truncated]";
  if (Array.isArray(v)) return v.map((x) => scrubValue(x, depth + 1) ?? null);
  return scrubObject(v as Record<string, unknown>, depth);
}
