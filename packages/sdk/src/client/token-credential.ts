import { KeywardError } from "../errors.js";
import type { CredentialEntry } from "./credentials-api.js";

/** A held token this close to its expiry is refreshed before it is handed out. */
const MARGIN_MS = 30_000;
/** …but not more often than this while it is still valid (a busy client asks per request). */
const MIN_REFRESH_INTERVAL_MS = 1_000;
/** The lifetime reported for a value without `expires_at` (a static key): callers ask again soon. */
const STATIC_LIFETIME_MS = 5 * 60_000;

/** What the token helpers need from the client. */
export interface TokenSource {
  /** The held entry; throws UnknownCredentialError / StaleCredentialError like `get`. */
  entry(name: string): CredentialEntry;
  /** Fetches what changed since the cursor. */
  refresh(): Promise<void>;
  now(): number;
}

/** An access token in the shape of `@azure/core-auth`'s `AccessToken`. */
export interface AccessToken {
  token: string;
  /** Epoch milliseconds. */
  expiresOnTimestamp: number;
  tokenType: "Bearer";
}

/** The shape of `@azure/core-auth`'s `TokenCredential`, so Azure SDK clients accept it. */
export interface TokenCredential {
  getToken(scopes: string | string[], options?: unknown): Promise<AccessToken>;
}

/**
 * The current token of an `oauth2_client_credentials` credential. Keyward refreshes such tokens
 * ahead of expiry and the event stream brings the new one; this covers a missed event or a
 * sleeping host: near expiry it asks the server first, and it never hands out an expired token.
 */
export function createTokenGetter(src: TokenSource, name: string): () => Promise<CredentialEntry> {
  let lastRefresh = Number.NEGATIVE_INFINITY;
  return async () => {
    let entry = src.entry(name);
    if (entry.expiresAt === undefined) return entry;
    const now = src.now();
    if (entry.expiresAt - MARGIN_MS > now) return entry;
    const expired = entry.expiresAt <= now;
    if (expired || now - lastRefresh >= MIN_REFRESH_INTERVAL_MS) {
      lastRefresh = now;
      let failure: unknown;
      await src.refresh().catch((err: unknown) => {
        failure = err;
      });
      entry = src.entry(name);
      if (entry.expiresAt !== undefined && entry.expiresAt <= src.now()) {
        throw new KeywardError(
          "credential_expired",
          `the token of credential "${name}" has expired and Keyward has no newer one yet`,
          { cause: failure },
        );
      }
    }
    return entry;
  };
}

export function toAccessToken(entry: CredentialEntry, now: number): AccessToken {
  return { token: entry.value, expiresOnTimestamp: entry.expiresAt ?? now + STATIC_LIFETIME_MS, tokenType: "Bearer" };
}
