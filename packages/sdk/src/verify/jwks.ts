import { createPublicKey, type KeyObject } from "node:crypto";
import type { VerifyAlgorithm } from "./compact.js";
import { JwksUnavailableError } from "./errors.js";

/** A verification key from the issuer's JWKS, bound to the one algorithm it may verify. */
export interface JwksKey {
  alg: VerifyAlgorithm;
  key: KeyObject;
}

export interface JwksCacheOptions {
  uri: string;
  fetch: typeof fetch;
  algorithms: ReadonlySet<VerifyAlgorithm>;
  now: () => number;
  /** At most one refetch for unknown kids per this many ms. */
  cooldownMs: number;
  /** A key set older than this is refreshed in the background on the next lookup. */
  maxAgeMs: number;
  timeoutMs: number;
}

export interface JwksCache {
  /** Memory only: the key for `kid` if the current key set has it. */
  get(kid: string): JwksKey | undefined;
  /**
   * For a kid `get` did not find: loads the key set if it was never loaded, or refetches it when
   * the cooldown allows (sharing a fetch already under way). `undefined` means unknown.
   * Throws `JwksUnavailableError` only while no key set has ever been loaded.
   */
  resolveMissing(kid: string): Promise<JwksKey | undefined>;
  /** Loads the key set now (e.g. at start-up), whatever the cooldown. */
  refresh(): Promise<void>;
}

/** Bounds what a misconfigured or hostile JWKS endpoint can make us hold or parse. */
const MAX_JWKS_CHARS = 1024 * 1024;
const MAX_KEYS = 100;
/**
 * Only kids that look like key ids may cause a refetch. Keyward's kids are RFC 7638 thumbprints
 * (base64url); a kid such as `../../etc/passwd` or `http://…` cannot be one, so it is simply
 * unknown. Either way a kid is a map key, never a path or a URL we would fetch.
 */
const REFETCHABLE_KID = /^[A-Za-z0-9._~+=-]{1,128}$/;
/** Before the first successful load there is nothing to serve, so failures are retried sooner. */
const FIRST_LOAD_RETRY_MS = 1000;

/**
 * The issuer's key set, fetched lazily and held in memory. A known kid costs a map lookup. An
 * unknown kid (after a key rotation) triggers a refetch, but at most one per cooldown however many
 * tokens with made-up kids arrive, and concurrent misses await the same fetch.
 */
export function createJwksCache(opts: JwksCacheOptions): JwksCache {
  let keys: Map<string, JwksKey & { material: string }> | undefined;
  let loadedAt = 0;
  /** Start of the last fetch of any kind: paces retries of a first load that failed. */
  let lastAttemptAt = Number.NEGATIVE_INFINITY;
  /**
   * Start of the last refetch (not the first load): the cooldown runs from here, so a rotation
   * just after start-up is picked up at once, and made-up kids still cost one fetch per cooldown.
   */
  let lastRefetchAt = Number.NEGATIVE_INFINITY;
  let inFlight: Promise<void> | undefined;
  // A function, not `keys.get` inline: TypeScript would keep `keys` narrowed across the await.
  const lookup = (kid: string) => keys?.get(kid);

  function startFetch(): Promise<void> {
    if (inFlight) return inFlight;
    lastAttemptAt = opts.now();
    if (keys !== undefined) lastRefetchAt = lastAttemptAt;
    inFlight = fetchKeySet(opts, keys)
      .then((next) => {
        keys = next;
        loadedAt = opts.now();
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  }

  function refreshInBackground(): void {
    if (inFlight || opts.now() - lastRefetchAt < opts.cooldownMs) return;
    // A failed background refresh keeps the current keys; the next stale lookup tries again.
    startFetch().catch(() => {});
  }

  return {
    get(kid) {
      if (keys === undefined) return undefined;
      if (opts.now() - loadedAt >= opts.maxAgeMs) refreshInBackground();
      return keys.get(kid);
    },

    async resolveMissing(kid) {
      if (keys === undefined) {
        if (!inFlight && opts.now() - lastAttemptAt < Math.min(FIRST_LOAD_RETRY_MS, opts.cooldownMs)) {
          throw new JwksUnavailableError(`the issuer's JWKS at ${opts.uri} could not be loaded; retrying shortly`);
        }
        try {
          await startFetch();
        } catch (err) {
          throw new JwksUnavailableError(`the issuer's JWKS at ${opts.uri} could not be loaded`, { cause: err });
        }
        return lookup(kid);
      }
      if (!REFETCHABLE_KID.test(kid)) return undefined;
      if (!inFlight && opts.now() - lastRefetchAt < opts.cooldownMs) return undefined;
      // With a key set in hand, a failed refetch leaves the kid unknown rather than failing the
      // request as an outage: the token is refused as it would be without the refetch.
      await startFetch().catch(() => {});
      return lookup(kid);
    },

    refresh: startFetch,
  };
}

async function fetchKeySet(
  opts: JwksCacheOptions,
  previous: ReadonlyMap<string, JwksKey & { material: string }> | undefined,
): Promise<Map<string, JwksKey & { material: string }>> {
  const res = await opts.fetch(opts.uri, {
    headers: { accept: "application/json" },
    // A redirect would let whoever controls the first response choose where keys come from.
    redirect: "manual",
    signal: AbortSignal.timeout(opts.timeoutMs),
  });
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw new Error(`JWKS endpoint answered HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get("content-length") ?? 0);
  if (declared > MAX_JWKS_CHARS) {
    await res.body?.cancel().catch(() => {});
    throw new Error("JWKS response is too large");
  }
  const text = await res.text();
  if (text.length > MAX_JWKS_CHARS) throw new Error("JWKS response is too large");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error("JWKS response is not JSON");
  }
  const list = (body as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list)) throw new Error("JWKS response has no keys array");

  const next = new Map<string, JwksKey & { material: string }>();
  for (const jwk of list.slice(0, MAX_KEYS)) {
    const imported = importJwk(jwk, opts.algorithms);
    if (!imported || next.has(imported.kid)) continue;
    // Unchanged keys keep their KeyObject, so results cached under them stay valid across refreshes.
    const old = previous?.get(imported.kid);
    next.set(imported.kid, old && old.material === imported.material ? old : imported);
  }
  return next;
}

/**
 * One JWK as a public KeyObject, or `undefined` for a key this verifier must not use: another
 * purpose (`use` other than `sig`), an algorithm not accepted, a type that does not match its
 * `alg`. Only the public members are read, so a private member published by mistake is ignored.
 */
function importJwk(
  jwk: unknown,
  algorithms: ReadonlySet<VerifyAlgorithm>,
): (JwksKey & { kid: string; material: string }) | undefined {
  if (typeof jwk !== "object" || jwk === null) return undefined;
  const { kid, use, alg, kty, crv, x, y } = jwk as Record<string, unknown>;
  if (typeof kid !== "string" || kid.length === 0) return undefined;
  if (use !== undefined && use !== "sig") return undefined;
  let keyAlg: VerifyAlgorithm;
  let material: { kty: string; crv: string; x: string; y?: string };
  if (kty === "EC" && crv === "P-256" && typeof x === "string" && typeof y === "string") {
    keyAlg = "ES256";
    material = { kty, crv, x, y };
  } else if (kty === "OKP" && crv === "Ed25519" && typeof x === "string") {
    keyAlg = "EdDSA";
    material = { kty, crv, x };
  } else {
    return undefined;
  }
  if ((alg !== undefined && alg !== keyAlg) || !algorithms.has(keyAlg)) return undefined;
  try {
    const key = createPublicKey({ key: material, format: "jwk" });
    return { kid, alg: keyAlg, key, material: `${keyAlg}:${material.x}:${material.y ?? ""}` };
  } catch {
    // Not a point on the curve, bad encoding: the issuer published a broken key; skip it.
    return undefined;
  }
}
