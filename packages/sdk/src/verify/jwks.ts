import { readBoundedText } from "../http/bounded-body.js";
import { JwksUnavailableError } from "./errors.js";

/**
 * Turns one entry of the key set into a usable key, or `undefined` to skip it (a type or algorithm
 * this consumer does not accept, a key too weak, a broken encoding). Called only for entries with a
 * non-empty string `kid` and no `use` other than `sig`; it should read the public members only, so
 * a private member published by mistake is never used. A throw (a point not on the curve, a bad
 * encoding: the issuer published a broken key) skips the entry too.
 */
export type JwkImporter<K> = (jwk: Readonly<Record<string, unknown>>) => K | undefined;

export interface JwksCacheOptions<K> {
  /** The JWKS URL, fetched as is (redirects are not followed). */
  uri: string;
  importKey: JwkImporter<K>;
  /** Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** The clock, in milliseconds since the epoch. Default `Date.now`. */
  now?: () => number;
  /** At most one refetch for unknown kids per this many ms, however many tokens ask. Default 30 s. */
  cooldownMs?: number;
  /** A key set older than this is refreshed in the background on the next lookup. Default 10 min. */
  maxAgeMs?: number;
  /** Timeout of one JWKS request. Default 5 s. */
  timeoutMs?: number;
  /**
   * Only kids matching this may cause a refetch once a key set is loaded; others are simply
   * unknown. Default {@link REFETCHABLE_KID}.
   */
  refetchableKid?: RegExp;
}

export interface JwksCache<K> {
  /** Memory only: the key for `kid` if the current key set has it. */
  get(kid: string): K | undefined;
  /**
   * For a kid `get` did not find: loads the key set if it was never loaded, or refetches it when
   * the cooldown allows (sharing a fetch already under way). `undefined` means unknown.
   * Throws `JwksUnavailableError` only while no key set has ever been loaded.
   */
  resolveMissing(kid: string): Promise<K | undefined>;
  /** Loads the key set now (e.g. at start-up), whatever the cooldown. */
  refresh(): Promise<void>;
}

/**
 * Kids that may cause a refetch: printable ASCII without spaces, as identity providers use them —
 * thumbprints (base64url), hex, UUIDs, `:`-separated names, and standard base64 with `/` and `+`
 * (Amazon Cognito's). A kid is only ever a map key, never a path or a URL we would fetch, and the
 * cooldown bounds what made-up kids can cost; Keyward's own verifier is stricter (keyward-jwk.ts).
 */
export const REFETCHABLE_KID = /^[\x21-\x7e]{1,256}$/;
/** Bounds what a misconfigured or hostile JWKS endpoint can make us buffer or parse. */
export const MAX_JWKS_BYTES = 1024 * 1024;
const MAX_KEYS = 100;
/** Before the first successful load there is nothing to serve, so failures are retried sooner. */
const FIRST_LOAD_RETRY_MS = 1000;
/** JWK members that hold private or secret key material (RFC 7518 §6): never kept, even as a fingerprint. */
const PRIVATE_MEMBERS = new Set(["d", "p", "q", "dp", "dq", "qi", "oth", "k"]);

interface Entry<K> {
  key: K;
  /** The JWK's public members, canonical: an unchanged JWK keeps its imported key across refreshes. */
  fingerprint: string;
}

/**
 * An issuer's key set, fetched lazily and held in memory. A known kid costs a map lookup. An
 * unknown kid (after a key rotation) triggers a refetch, but at most one per cooldown however many
 * tokens with made-up kids arrive, and concurrent misses await the same fetch. Which keys are kept
 * and what they become is the caller's `importKey`; entries whose JWK did not change keep the very
 * same key object, so results cached under it stay valid across refreshes.
 *
 * The kid rule is applied after the first load, not before: the first load is needed whatever the
 * kid and is paced on failure, so a made-up kid costs nothing extra, while checking first would
 * leave a cache whose issuer uses kids outside the rule never loaded at all. The rule guards only
 * refetches, the one thing made-up kids could otherwise multiply.
 *
 * @example
 * ```ts
 * import { createPublicKey } from "node:crypto";
 * import { createJwksCache } from "@keyward/sdk/jwks";
 *
 * const jwks = createJwksCache({
 *   uri: "https://login.example.com/.well-known/jwks.json",
 *   // RSA keys only, built from the public members only.
 *   importKey: ({ kty, n, e }) =>
 *     kty === "RSA" && typeof n === "string" && typeof e === "string"
 *       ? createPublicKey({ key: { kty, n, e }, format: "jwk" })
 *       : undefined,
 * });
 * // Rejects with JwksUnavailableError while the key set has never been loaded.
 * const key = jwks.get(kid) ?? (await jwks.resolveMissing(kid));
 * ```
 */
export function createJwksCache<K>(options: JwksCacheOptions<K>): JwksCache<K> {
  const opts = {
    uri: options.uri,
    importKey: options.importKey,
    fetch: options.fetch ?? globalThis.fetch,
    now: options.now ?? Date.now,
    cooldownMs: options.cooldownMs ?? 30_000,
    maxAgeMs: options.maxAgeMs ?? 600_000,
    timeoutMs: options.timeoutMs ?? 5000,
    refetchableKid: options.refetchableKid ?? REFETCHABLE_KID,
  };
  let keys: Map<string, Entry<K>> | undefined;
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
  const lookup = (kid: string) => keys?.get(kid)?.key;

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

  return {
    get(kid) {
      if (keys === undefined) return undefined;
      if (!inFlight && opts.now() - loadedAt >= opts.maxAgeMs && opts.now() - lastRefetchAt >= opts.cooldownMs) {
        // A failed background refresh keeps the current keys; the next stale lookup tries again.
        startFetch().catch(() => {});
      }
      return keys.get(kid)?.key;
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
      if (!opts.refetchableKid.test(kid)) return undefined;
      if (!inFlight && opts.now() - lastRefetchAt < opts.cooldownMs) return undefined;
      // With a key set in hand, a failed refetch leaves the kid unknown rather than failing the
      // request as an outage: the token is refused as it would be without the refetch.
      await startFetch().catch(() => {});
      return lookup(kid);
    },

    refresh: startFetch,
  };
}

interface FetchOptions<K> {
  uri: string;
  importKey: JwkImporter<K>;
  fetch: typeof fetch;
  timeoutMs: number;
}

async function fetchKeySet<K>(
  opts: FetchOptions<K>,
  previous: ReadonlyMap<string, Entry<K>> | undefined,
): Promise<Map<string, Entry<K>>> {
  const res = await opts.fetch(opts.uri, {
    headers: { accept: "application/json" },
    // A redirect would let whoever controls the first response choose where keys come from.
    redirect: "manual",
    signal: AbortSignal.timeout(opts.timeoutMs),
  });
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw new Error(`the JWKS endpoint answered HTTP ${res.status}`);
  }
  // Streamed and refused at the limit (ResponseTooLargeError, the cause of JwksUnavailableError).
  const text = await readBoundedText(res, { what: "the JWKS response", limit: "jwksBytes", maxBytes: MAX_JWKS_BYTES });
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error("the JWKS response is not JSON");
  }
  const list = (body as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list)) throw new Error("the JWKS response has no keys array");

  const next = new Map<string, Entry<K>>();
  for (const jwk of list.slice(0, MAX_KEYS)) {
    if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk)) continue;
    const { kid, use } = jwk as Record<string, unknown>;
    if (typeof kid !== "string" || kid.length === 0 || next.has(kid)) continue;
    if (use !== undefined && use !== "sig") continue;
    const fingerprint = publicFingerprint(jwk as Record<string, unknown>);
    const old = previous?.get(kid);
    if (old && old.fingerprint === fingerprint) {
      next.set(kid, old);
      continue;
    }
    const key = importOrSkip(opts.importKey, jwk as Record<string, unknown>);
    if (key !== undefined) next.set(kid, { key, fingerprint });
  }
  return next;
}

function importOrSkip<K>(importKey: JwkImporter<K>, jwk: Record<string, unknown>): K | undefined {
  try {
    return importKey(jwk);
  } catch {
    // One broken key must not cost the issuer its whole key set.
    return undefined;
  }
}

function publicFingerprint(jwk: Record<string, unknown>): string {
  const names = Object.keys(jwk)
    .filter((name) => !PRIVATE_MEMBERS.has(name))
    .sort();
  return JSON.stringify(names.map((name) => [name, jwk[name]]));
}
