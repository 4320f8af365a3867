import { createBoundedCache } from "../cache/bounded-cache.js";
import type { VerifiedToken } from "./claims.js";
import type { JwksKey } from "./keyward-jwk.js";

interface Entry {
  token: VerifiedToken;
  kid: string;
  key: JwksKey;
}

/**
 * Verified results by exact token string, so an agent that sees the same token on every call pays
 * for one signature check. An entry is only a shortcut past the signature and the static claims:
 * the caller re-checks expiry on every hit, and the entry is void once its key is no longer in the
 * issuer's key set.
 *
 * Bounded LRU (`@keyward/sdk/cache`): when full, the least recently verified token leaves, one at
 * a time. (Evicting from the front of a plain Map is quadratic in V8, which is why this used two
 * generations dropped whole; lru-cache keeps its order in arrays and has no such cost.)
 */
export function createResultCache(maxEntries: number) {
  // Even an empty cache hashes the whole token string to answer: skip it when caching is off.
  if (maxEntries === 0) {
    return {
      get: (_token: string): Entry | undefined => undefined,
      set(_token: string, _entry: Entry): void {},
      delete(_token: string): void {},
    };
  }
  const cache = createBoundedCache<string, Entry>({ max: maxEntries });
  return {
    get: (token: string): Entry | undefined => cache.get(token),
    set: (token: string, entry: Entry): void => cache.set(token, entry),
    delete: (token: string): void => cache.delete(token),
  };
}
