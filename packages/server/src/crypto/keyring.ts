import { createHmac, createSecretKey, type KeyObject } from "node:crypto";
import {
  DecryptError,
  type Envelope,
  openValue,
  parseEnvelope,
  sealEnvelope,
  unwrapDataKey,
  wrapEnvelope,
} from "./envelope.js";

export { DecryptError } from "./envelope.js";

/**
 * The master keys this process holds: one active key that seals, and retired keys that can still
 * open what they sealed until everything has been rewrapped. See README.md for the hierarchy.
 */
export interface Keyring {
  /** Fingerprint of the active master key (safe to log and store; it is not the key). */
  readonly activeKeyId: string;
  /** Ids of every loaded master key, the active one first (retired keys can only open). */
  readonly keyIds: readonly string[];
  /** Encrypts `plaintext` for the record named by `aad` (e.g. `signing_keys:<kid>:private`). */
  seal(plaintext: Buffer, aad: string): Buffer;
  /** Decrypts a sealed value; throws DecryptError unless it was sealed for exactly this `aad`. */
  open(sealed: Buffer, aad: string): Buffer;
  /**
   * Re-wraps the data key under the active master key; the value's iv, tag and ciphertext are kept
   * byte for byte. A value already under the active key comes back unchanged. Authenticates the
   * whole value first, so a damaged value is reported rather than carried forward.
   */
  rewrap(sealed: Buffer, aad: string): Buffer;
  /** The id of the master key a sealed value was wrapped under. */
  keyIdOf(sealed: Buffer): string;
}

export const MASTER_KEY_BYTES = 32;

/**
 * A short, stable fingerprint of a master key: an HMAC under the key itself, so it reveals nothing
 * about the key, and two different keys collide only with negligible probability.
 */
export function masterKeyId(masterKey: Buffer): string {
  return createHmac("sha256", masterKey).update("keyward master key id").digest("hex").slice(0, 16);
}

export function createKeyring(opts: { active: Buffer; retired?: readonly Buffer[] }): Keyring {
  const keys = new Map<string, KeyObject>();
  const add = (raw: Buffer): string => {
    if (!Buffer.isBuffer(raw) || raw.length !== MASTER_KEY_BYTES) {
      throw new Error(`master key must be ${MASTER_KEY_BYTES} bytes`);
    }
    const id = masterKeyId(raw);
    // A KeyObject copies the bytes out of the caller's Buffer and keeps them off the JS heap.
    keys.set(id, createSecretKey(raw));
    return id;
  };
  const activeKeyId = add(opts.active);
  for (const raw of opts.retired ?? []) add(raw);
  const activeKey = keys.get(activeKeyId)!;

  const keyFor = (id: string): KeyObject => {
    const key = keys.get(id);
    if (!key) throw new DecryptError(`sealed under master key ${id}, which is not loaded`);
    return key;
  };

  /** Authenticates both layers, hands the plaintext and data key to `use`, then wipes the data key. */
  const withOpened = <T>(
    sealed: Buffer,
    aad: string,
    use: (plaintext: Buffer, dataKey: Buffer, env: Envelope) => T,
  ): T => {
    const env = parseEnvelope(sealed);
    const dataKey = unwrapDataKey(keyFor(env.keyId), env, aad);
    try {
      return use(openValue(dataKey, env, aad), dataKey, env);
    } finally {
      dataKey.fill(0);
    }
  };

  return {
    activeKeyId,
    keyIds: [...keys.keys()],
    seal: (plaintext, aad) => sealEnvelope(activeKey, activeKeyId, plaintext, aad),
    open: (sealed, aad) => withOpened(sealed, aad, (plaintext) => plaintext),
    rewrap: (sealed, aad) =>
      withOpened(sealed, aad, (plaintext, dataKey, env) => {
        plaintext.fill(0);
        if (env.keyId === activeKeyId) return Buffer.from(sealed);
        return wrapEnvelope(activeKey, activeKeyId, dataKey, Buffer.from(env.value), aad);
      }),
    keyIdOf: (sealed) => parseEnvelope(sealed).keyId,
  };
}
