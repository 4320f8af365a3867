import { fail, type JoseResult } from "./failure.js";

/** The registered claims the core checks (RFC 7519 §4.1); anything else is the caller's. */
export type RegisteredClaim = "iss" | "aud" | "exp" | "nbf" | "iat";

export interface ClaimRules {
  /** Compared exactly with `iss`; omitted, `iss` is not checked. */
  issuer?: string;
  /** At least one `aud` must be one of these; omitted, any (well-formed) `aud` passes. */
  audience?: ReadonlySet<string>;
  /** Claims that must be present (`iss` and `aud` already are when `issuer`/`audience` are given). */
  required?: readonly RegisteredClaim[];
  /** Leeway for clock skew between hosts on `nbf` and `iat`, in seconds. Default 0. */
  clockToleranceS?: number;
  /** Leeway on `exp`. Default `clockToleranceS`. */
  expToleranceS?: number;
  /** Refuse an `iat` later than now (beyond the tolerance). Default true. */
  rejectFutureIat?: boolean;
}

export interface CheckedClaims {
  /** `aud` as a list (a single string becomes one entry; absent becomes empty). */
  audience: readonly string[];
}

/**
 * Checks the registered claims of a payload whose signature held, `nowS` in seconds since the
 * epoch. Types first (a wrong type is `invalid_claim`, never a pass), then issuer and audience,
 * then the times: RFC 7519 §4.1.4, a token is valid only before `exp`.
 *
 * @example
 * ```ts
 * import { validateClaims } from "@keyward/sdk/jose";
 *
 * const r = validateClaims(payload, { issuer, audience: new Set(["api"]), required: ["exp"] }, Date.now() / 1000);
 * if (!r.ok && r.code === "expired") return reauthenticate();
 * ```
 */
export function validateClaims(
  claims: Readonly<Record<string, unknown>>,
  rules: ClaimRules,
  nowS: number,
): JoseResult<CheckedClaims> {
  const required = new Set<RegisteredClaim>(rules.required ?? []);
  const { exp, nbf, iat, iss, aud } = claims;
  for (const [name, value] of [
    ["exp", exp],
    ["iat", iat],
    ["nbf", nbf],
  ] as const) {
    if (value === undefined ? required.has(name) : !isFiniteNumber(value))
      return fail("invalid_claim", { claim: name });
  }
  if (rules.issuer !== undefined ? iss !== rules.issuer : required.has("iss") && typeof iss !== "string") {
    return fail("wrong_issuer", { claim: "iss" });
  }
  const audience = typeof aud === "string" ? [aud] : aud === undefined ? [] : aud;
  if (!Array.isArray(audience) || !audience.every((a) => typeof a === "string")) {
    return fail("invalid_claim", { claim: "aud" });
  }
  if (audience.length === 0 && (aud !== undefined || rules.audience !== undefined || required.has("aud"))) {
    return fail("invalid_claim", { claim: "aud" });
  }
  if (rules.audience !== undefined) {
    const wanted = rules.audience;
    if (!audience.some((a) => wanted.has(a))) return fail("wrong_audience", { claim: "aud" });
  }

  const tolerance = rules.clockToleranceS ?? 0;
  if (isFiniteNumber(exp) && nowS >= exp + (rules.expToleranceS ?? tolerance)) return fail("expired", { claim: "exp" });
  if (isFiniteNumber(nbf) && nowS < nbf - tolerance) return fail("not_yet_valid", { claim: "nbf" });
  if (rules.rejectFutureIat !== false && isFiniteNumber(iat) && iat > nowS + tolerance) {
    return fail("not_yet_valid", { claim: "iat" });
  }
  return { ok: true, value: { audience: audience as string[] } };
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}
