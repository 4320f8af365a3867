import { createPublicKey } from "node:crypto";
import type { JwsAlgorithm, VerificationKey } from "@keyward/sdk/jose";
import { createJwksCache, type JwksCache } from "@keyward/sdk/jwks";

/** The asymmetric JWS algorithms a trusted issuer may be configured with (never `none`, never HMAC). */
export type ExternalAlgorithm = JwsAlgorithm;

/** A verification key from an issuer's JWKS, with the algorithms it may verify. */
export type ExternalKey = VerificationKey;

export interface ExternalJwksOptions {
  uri: string;
  /** The algorithms configured for the issuer: keys usable with none of them are dropped. */
  algorithms: ReadonlySet<ExternalAlgorithm>;
  fetch: typeof fetch;
  now: () => number;
  /** At most one refetch for unknown kids per this many ms, however many tokens ask. */
  cooldownMs: number;
  /** A key set older than this is refreshed in the background on the next lookup. */
  maxAgeMs: number;
  timeoutMs: number;
}

/**
 * `resolveMissing` throws (`JwksUnavailableError`) only while no key set could ever be loaded: the
 * caller answers `invalid_grant`, as for any token it cannot accept.
 */
export type ExternalJwks = JwksCache<ExternalKey>;

/** Shorter than RSA-2048 is not a signature key anyone should still trust. */
const MIN_RSA_BITS = 2048;
const EC_CURVES: Record<string, ExternalAlgorithm> = { "P-256": "ES256", "P-384": "ES384", "P-521": "ES512" };
const RSA_ALGORITHMS: readonly ExternalAlgorithm[] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];

/**
 * One trusted issuer's key set, on the SDK's JWKS cache (lazy load, one refetch per cooldown for
 * unknown kids, single-flight, background refresh, 1 MiB cap counted while streaming); this file
 * only decides which of the issuer's keys we use and for which algorithms.
 */
export function createExternalJwks(opts: ExternalJwksOptions): ExternalJwks {
  return createJwksCache({
    uri: opts.uri,
    importKey: (jwk) => importExternalJwk(jwk, opts.algorithms),
    fetch: opts.fetch,
    now: opts.now,
    cooldownMs: opts.cooldownMs,
    maxAgeMs: opts.maxAgeMs,
    timeoutMs: opts.timeoutMs,
  });
}

/**
 * One JWK as a public key, or `undefined` for a key we must not use: a type or `alg` outside the
 * issuer's configured algorithms, a short RSA modulus. Only the public members are passed on, so a
 * private member published by mistake is ignored. (`kid` and `use` are the cache's to check.)
 */
function importExternalJwk(
  jwk: Readonly<Record<string, unknown>>,
  allowed: ReadonlySet<ExternalAlgorithm>,
): ExternalKey | undefined {
  const { alg, kty, crv, x, y, n, e } = jwk;
  let family: readonly ExternalAlgorithm[];
  let material: Record<string, string>;
  if (kty === "RSA" && typeof n === "string" && typeof e === "string") {
    family = RSA_ALGORITHMS;
    material = { kty, n, e };
  } else if (
    kty === "EC" &&
    typeof crv === "string" &&
    EC_CURVES[crv] &&
    typeof x === "string" &&
    typeof y === "string"
  ) {
    family = [EC_CURVES[crv]];
    material = { kty, crv, x, y };
  } else if (kty === "OKP" && crv === "Ed25519" && typeof x === "string") {
    family = ["EdDSA"];
    material = { kty, crv, x };
  } else {
    return undefined;
  }
  // A key that names its algorithm verifies that one only (RFC 7517 §4.4).
  const algorithms = new Set(family.filter((a) => allowed.has(a) && (alg === undefined || alg === a)));
  if (algorithms.size === 0) return undefined;
  // Throws for an invalid point or modulus: the cache skips that key.
  const key = createPublicKey({ key: material, format: "jwk" });
  if (kty === "RSA" && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) return undefined;
  return { key, algorithms };
}
