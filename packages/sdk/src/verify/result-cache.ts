import type { VerifiedToken } from "./claims.js";
import type { JwksKey } from "./jwks.js";

interface Entry {
  token: VerifiedToken;
  kid: string;
  key: JwksKey;
}

/**
 * Verified results by exact token string, so an agent that sees the same token on every call pays
 * for one signature check. An entry is only a shortcut past the signature and the static claims:
 * the caller re-checks expiry on every hit, and the entry is void once its key is no longer in the
 * issuer's key set. Bounded; the oldest entry goes first (insertion order, no reordering on hits,
 * which would cost a Map delete and set per request).
 */
export function createResultCache(maxEntries: number) {
  const entries = new Map<string, Entry>();
  return {
    get(token: string): Entry | undefined {
      return maxEntries === 0 ? undefined : entries.get(token);
    },
    set(token: string, entry: Entry): void {
      if (maxEntries === 0) return;
      if (entries.size >= maxEntries) {
        const oldest = entries.keys().next();
        if (!oldest.done) entries.delete(oldest.value);
      }
      entries.set(token, entry);
    },
    delete(token: string): void {
      entries.delete(token);
    },
  };
}
