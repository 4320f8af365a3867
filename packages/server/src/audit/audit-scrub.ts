import { scrubString } from "../ops/text-scrub.js";

/**
 * Secret hygiene for audit records, defence in depth: callers must never hand the audit log a
 * secret, but if one slips through it is masked before it is stored (and hashed into the chain,
 * after which it could never be removed without breaking the chain).
 *
 * It is also the one place that bounds what an outsider can put in a record (issue 18, finding 3):
 * every string is cut to a stated length, and control and bidi characters are escaped, so a
 * 15 KB agent name cannot grow the table by its size, and a U+202E in a header cannot reorder
 * what an operator reads in a terminal or the console. Every record passes here on the way in
 * (audit-event.ts `toRow`), whatever route built it. Each string goes through ops/text-scrub.ts,
 * which the request log uses too.
 */

/** Keys whose values are never stored, whatever they hold. */
const SECRET_KEY = /secret|token|password|value|authorization|api_?key|credential_value/i;
export const REDACTED = "[redacted]";
const MAX_DEPTH = 8;
/** A runaway details object must not bloat the table; it is replaced by a marker. */
export const MAX_DETAILS_CHARS = 16 * 1024;

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
