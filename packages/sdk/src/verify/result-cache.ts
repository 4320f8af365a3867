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
 * Bounded by two generations of at most `maxEntries / 2` each: when the current one fills, it
 * becomes the previous one and the old previous one is dropped whole; a hit in the previous
 * generation moves the entry forward. Evicting one entry at a time from the front of a single Map
 * looks simpler but is quadratic in V8 (every delete leaves a hole that the next `keys().next()`
 * walks over again): about 20 µs per insert at 10,000 entries, a quarter of a signature check.
 */
export function createResultCache(maxEntries: number) {
  const generationSize = Math.max(1, Math.floor(maxEntries / 2));
  let current = new Map<string, Entry>();
  let previous = new Map<string, Entry>();

  function set(token: string, entry: Entry): void {
    if (maxEntries === 0) return;
    if (current.size >= generationSize) {
      previous = current;
      current = new Map();
    }
    current.set(token, entry);
  }

  return {
    get(token: string): Entry | undefined {
      // Even an empty Map hashes the whole token string to answer: skip it when caching is off.
      if (maxEntries === 0) return undefined;
      const hit = current.get(token);
      if (hit !== undefined || previous.size === 0) return hit;
      const old = previous.get(token);
      if (old !== undefined) {
        previous.delete(token);
        set(token, old);
      }
      return old;
    },
    set,
    delete(token: string): void {
      current.delete(token);
      previous.delete(token);
    },
  };
}
