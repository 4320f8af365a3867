/**
 * Secret hygiene for audit records, defence in depth: callers must never hand the audit log a
 * secret, but if one slips through it is masked before it is stored (and hashed into the chain,
 * after which it could never be removed without breaking the chain).
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

export function scrubString(s: string): string {
  // NUL cannot be stored in PostgreSQL text, and one such event would fail its whole batch.
  if (s.includes("\0")) s = s.replaceAll("\0", "\uFFFD");
  // The cheap test first: almost every string has neither marker, and replace() would copy it.
  if (!s.includes("kw") && !s.includes("eyJ")) return s;
  return s.replace(KW_SECRET, mask).replace(JWT, mask);
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
