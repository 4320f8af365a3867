import { createPublicKey, type KeyObject } from "node:crypto";

/** The asymmetric JWS algorithms a trusted issuer may be configured with (never `none`, never HMAC). */
export type ExternalAlgorithm =
  | "RS256"
  | "RS384"
  | "RS512"
  | "PS256"
  | "PS384"
  | "PS512"
  | "ES256"
  | "ES384"
  | "ES512"
  | "EdDSA";

/** A verification key from an issuer's JWKS, with the algorithms it may verify. */
export interface ExternalKey {
  key: KeyObject;
  algorithms: ReadonlySet<ExternalAlgorithm>;
}

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

export interface ExternalJwks {
  /** Memory only: the key for `kid` in the current key set. */
  get(kid: string): ExternalKey | undefined;
  /**
   * For a kid `get` did not find: loads the key set (first use) or refetches it when the cooldown
   * allows, sharing a fetch already under way. `undefined` means unknown. Throws only while no key
   * set could ever be loaded (the issuer's endpoint is down or answers garbage).
   */
  resolveMissing(kid: string): Promise<ExternalKey | undefined>;
}

/** Bounds what a misconfigured or hostile JWKS endpoint can make us buffer or parse. */
export const MAX_JWKS_BYTES = 1024 * 1024;
const MAX_KEYS = 100;
/** Made-up kids that cannot be key ids (paths, URLs) never cause a refetch. */
const REFETCHABLE_KID = /^[A-Za-z0-9._~+=:-]{1,256}$/;
/** Before the first successful load there is nothing to serve, so failures are retried sooner. */
const FIRST_LOAD_RETRY_MS = 1000;
/** Shorter than RSA-2048 is not a signature key anyone should still trust. */
const MIN_RSA_BITS = 2048;

const EC_CURVES: Record<string, ExternalAlgorithm> = { "P-256": "ES256", "P-384": "ES384", "P-521": "ES512" };
const RSA_ALGORITHMS: readonly ExternalAlgorithm[] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];

/**
 * One trusted issuer's key set, fetched lazily and held in memory (the same shape as the SDK's
 * verify/jwks.ts, which is internal to the SDK and knows only Keyward's ES256/EdDSA keys; external
 * identity providers mostly sign with RSA). A known kid is a map lookup; a rotation at the issuer
 * shows up as an unknown kid and costs one refetch per cooldown.
 */
export function createExternalJwks(opts: ExternalJwksOptions): ExternalJwks {
  let keys: Map<string, ExternalKey> | undefined;
  let loadedAt = 0;
  /** Start of the last fetch of any kind: paces retries of a first load that failed. */
  let lastAttemptAt = Number.NEGATIVE_INFINITY;
  /**
   * Start of the last refetch (not the first load): the cooldown runs from here, so a rotation just
   * after the first exchange is still picked up, and made-up kids cost one fetch per cooldown.
   */
  let lastRefetchAt = Number.NEGATIVE_INFINITY;
  let inFlight: Promise<void> | undefined;
  const lookup = (kid: string) => keys?.get(kid);

  function startFetch(): Promise<void> {
    if (inFlight) return inFlight;
    lastAttemptAt = opts.now();
    if (keys !== undefined) lastRefetchAt = lastAttemptAt;
    inFlight = fetchKeySet(opts)
      .then((next) => {
        keys = next;
        loadedAt = opts.now();
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  }

  return {
    get(kid) {
      if (keys === undefined) return undefined;
      if (!inFlight && opts.now() - loadedAt >= opts.maxAgeMs && opts.now() - lastRefetchAt >= opts.cooldownMs) {
        // A failed background refresh keeps the keys we have; the next stale lookup tries again.
        startFetch().catch(() => {});
      }
      return keys.get(kid);
    },

    async resolveMissing(kid) {
      if (!REFETCHABLE_KID.test(kid)) return undefined;
      if (keys === undefined) {
        if (!inFlight && opts.now() - lastAttemptAt < Math.min(FIRST_LOAD_RETRY_MS, opts.cooldownMs)) {
          throw new Error("the issuer's JWKS could not be loaded; retrying shortly");
        }
        await startFetch();
        return lookup(kid);
      }
      if (!inFlight && opts.now() - lastRefetchAt < opts.cooldownMs) return undefined;
      // With a key set in hand, a failed refetch leaves the kid unknown: refused as without it.
      await startFetch().catch(() => {});
      return lookup(kid);
    },
  };
}

async function fetchKeySet(opts: ExternalJwksOptions): Promise<Map<string, ExternalKey>> {
  const res = await opts.fetch(opts.uri, {
    headers: { accept: "application/json" },
    // A redirect would let whoever answers first choose where the keys come from.
    redirect: "manual",
    signal: AbortSignal.timeout(opts.timeoutMs),
  });
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw new Error(`the issuer's JWKS endpoint answered HTTP ${res.status}`);
  }
  const text = await readCapped(res, MAX_JWKS_BYTES);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error("the issuer's JWKS response is not JSON");
  }
  const list = (body as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list)) throw new Error("the issuer's JWKS response has no keys array");
  const next = new Map<string, ExternalKey>();
  for (const jwk of list.slice(0, MAX_KEYS)) {
    const imported = importJwk(jwk, opts.algorithms);
    if (imported && !next.has(imported.kid)) next.set(imported.kid, imported);
  }
  return next;
}

/** The body as text, refused as soon as it grows past `max` bytes (never buffered whole). */
async function readCapped(res: Response, max: number): Promise<string> {
  if (Number(res.headers.get("content-length") ?? 0) > max) {
    await res.body?.cancel().catch(() => {});
    throw new Error("the issuer's JWKS response is too large");
  }
  if (!res.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw new Error("the issuer's JWKS response is too large");
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * One JWK as a public key, or `undefined` for a key we must not use: another purpose (`use` other
 * than `sig`), a type or `alg` outside the issuer's configured algorithms, a short RSA modulus.
 * Only the public members are passed on, so a private member published by mistake is ignored.
 */
function importJwk(jwk: unknown, allowed: ReadonlySet<ExternalAlgorithm>): (ExternalKey & { kid: string }) | undefined {
  if (typeof jwk !== "object" || jwk === null) return undefined;
  const { kid, use, alg, kty, crv, x, y, n, e } = jwk as Record<string, unknown>;
  if (typeof kid !== "string" || kid.length === 0) return undefined;
  if (use !== undefined && use !== "sig") return undefined;
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
  try {
    const key = createPublicKey({ key: material, format: "jwk" });
    if (kty === "RSA" && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) return undefined;
    return { kid, key, algorithms };
  } catch {
    // Not a valid point or modulus: the issuer published a broken key; skip it.
    return undefined;
  }
}
