import { ipMatches } from "../http/client-ip.js";
import type { KeyEntry } from "../keys/key-entry.js";

/**
 * Why a key that exists may not be used right now. `invalid_key` is a canary's: it must answer
 * exactly as a key that does not exist.
 */
export type KeyDenialCode = "key_revoked" | "key_frozen" | "key_expired" | "invalid_key";

export interface KeyDenial {
  code: KeyDenialCode;
  message: string;
}

const REVOKED: KeyDenial = { code: "key_revoked", message: "the API key has been revoked" };
const FROZEN: KeyDenial = { code: "key_frozen", message: "the API key is frozen" };
const EXPIRED: KeyDenial = { code: "key_expired", message: "the API key has expired" };
/** Word for word the unknown key's denial (caller-auth.ts), so a canary cannot be told apart. */
export const UNKNOWN_KEY: KeyDenial = { code: "invalid_key", message: "the API key is not valid" };

/**
 * The one rule for "may this key be used now", for the key itself and for every token that rests
 * on it. A key retired by rotation is expired whatever its row says about expiry: its successor
 * holds the lineage, and a retired key never comes back (keys/key-state.ts refuses the edits that
 * would try).
 */
export function keyDenial(key: KeyEntry, now: number): KeyDenial | undefined {
  // First: a canary answers as an unknown key whatever its state, or its state would show it exists.
  if (key.canary) return UNKNOWN_KEY;
  if (key.status === "revoked") return REVOKED;
  if (key.status === "frozen") return FROZEN;
  if (key.expiresAt !== null && key.expiresAt <= now) return EXPIRED;
  if (key.rotatedTo !== null && key.expiresAt === null) return EXPIRED;
  return undefined;
}

/**
 * A key's IP allowlist, applied to the address the request came from. Answers are cached per key
 * and address (bounded): BlockList.check allocates on every call.
 */
export function ipAllowed(key: KeyEntry, ip: string): boolean {
  if (key.ipAllow === null) return true;
  let seen = key.ipSeen.get(ip);
  if (seen === undefined) {
    seen = ipMatches(key.ipAllow, ip);
    if (key.ipSeen.size >= 256) key.ipSeen.clear();
    key.ipSeen.set(ip, seen);
  }
  return seen;
}
