import { createCipheriv, createDecipheriv, type KeyObject, randomBytes } from "node:crypto";

/**
 * The sealed-value format (version 1). Every field is fixed-size except the ciphertext, which is
 * the tail, so parsing needs no length fields an attacker could lie about.
 *
 *   offset size field
 *   0      1    version (0x01)
 *   1      8    master key id (the 16-hex-char fingerprint, as raw bytes)
 *   9      12   wrap iv
 *   21     32   wrapped data key      AES-256-GCM(master key, data key, aad = wrapAad)
 *   53     16   wrap tag
 *   69     12   value iv
 *   81     16   value tag
 *   97     n    value ciphertext      AES-256-GCM(data key, plaintext, aad = valueAad)
 *
 * The value part never depends on the master key, so a master key rotation rewrites bytes 1–68
 * only. Both AADs carry the caller's record binding; the wrap AAD also carries the version and the
 * master key id, so a header edited to name another key fails authentication instead of
 * being trusted.
 */
export const ENVELOPE_VERSION = 1;
const KEY_ID_BYTES = 8;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const DATA_KEY_BYTES = 32;
const HEADER_BYTES = 1 + KEY_ID_BYTES + IV_BYTES + DATA_KEY_BYTES + TAG_BYTES + IV_BYTES + TAG_BYTES;

/** A sealed value could not be opened. The message names the cause, never key material or data. */
export class DecryptError extends Error {
  override readonly name = "DecryptError";
}

export interface Envelope {
  keyId: string;
  wrapIv: Buffer;
  wrappedKey: Buffer;
  wrapTag: Buffer;
  /** Bytes 69…end: value iv, tag and ciphertext, carried over untouched by a rewrap. */
  value: Buffer;
}

/** Splits a sealed value into its fields; throws DecryptError when it cannot be one. */
export function parseEnvelope(sealed: Buffer): Envelope {
  if (!Buffer.isBuffer(sealed) || sealed.length < HEADER_BYTES) {
    throw new DecryptError("sealed value is truncated or not a Keyward envelope");
  }
  if (sealed[0] !== ENVELOPE_VERSION) {
    throw new DecryptError(`sealed value has unsupported envelope version ${sealed[0]}`);
  }
  let at = 1;
  const take = (n: number): Buffer => {
    const part = sealed.subarray(at, at + n);
    at += n;
    return part;
  };
  return {
    keyId: take(KEY_ID_BYTES).toString("hex"),
    wrapIv: take(IV_BYTES),
    wrappedKey: take(DATA_KEY_BYTES),
    wrapTag: take(TAG_BYTES),
    value: sealed.subarray(at),
  };
}

/** Encrypts `plaintext` under a fresh data key and wraps that key under `masterKey`. */
export function sealEnvelope(masterKey: KeyObject, keyId: string, plaintext: Buffer, aad: string): Buffer {
  const dataKey = randomBytes(DATA_KEY_BYTES);
  try {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", dataKey, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(valueAad(aad));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return wrapEnvelope(masterKey, keyId, dataKey, Buffer.concat([iv, cipher.getAuthTag(), ciphertext]), aad);
  } finally {
    dataKey.fill(0);
  }
}

/** Builds an envelope around an already-encrypted value part (used by seal and by rewrap). */
export function wrapEnvelope(masterKey: KeyObject, keyId: string, dataKey: Buffer, value: Buffer, aad: string): Buffer {
  const idBytes = Buffer.from(keyId, "hex");
  if (idBytes.length !== KEY_ID_BYTES) throw new Error("master key id must be 16 hex characters");
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", masterKey, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(wrapAad(keyId, aad));
  const wrapped = Buffer.concat([cipher.update(dataKey), cipher.final()]);
  return Buffer.concat([Buffer.of(ENVELOPE_VERSION), idBytes, iv, wrapped, cipher.getAuthTag(), value]);
}

/** Recovers the data key; the caller must zero it when done. */
export function unwrapDataKey(masterKey: KeyObject, env: Envelope, aad: string): Buffer {
  const key = gcmOpen(masterKey, env.wrapIv, env.wrappedKey, env.wrapTag, wrapAad(env.keyId, aad));
  if (!key) throw authFailure(aad);
  return key;
}

/** Decrypts the value part with the data key; throws DecryptError and returns nothing on failure. */
export function openValue(dataKey: Buffer, env: Envelope, aad: string): Buffer {
  const iv = env.value.subarray(0, IV_BYTES);
  const tag = env.value.subarray(IV_BYTES, IV_BYTES + TAG_BYTES);
  const plaintext = gcmOpen(dataKey, iv, env.value.subarray(IV_BYTES + TAG_BYTES), tag, valueAad(aad));
  if (!plaintext) throw authFailure(aad);
  return plaintext;
}

// The labels keep the two AADs from ever being equal, so a wrapped key can never pass as a value.
function valueAad(aad: string): Buffer {
  return Buffer.from(`keyward.envelope.v1/value\0${aad}`, "utf8");
}

function wrapAad(keyId: string, aad: string): Buffer {
  return Buffer.from(`keyward.envelope.v1/wrap\0${keyId}\0${aad}`, "utf8");
}

function authFailure(aad: string): DecryptError {
  // The aad is a record locator such as `signing_keys:<kid>:private`, not a secret: naming it
  // tells an operator which row is damaged.
  return new DecryptError(
    `cannot open sealed value for ${aad}: authentication failed (tampered data, or it belongs to another record)`,
  );
}

/**
 * GCM decryption that never lets unauthenticated plaintext escape: `update` hands out bytes before
 * `final` checks the tag, so those bytes are wiped and dropped when the tag is wrong.
 */
function gcmOpen(key: KeyObject | Buffer, iv: Buffer, data: Buffer, tag: Buffer, aad: Buffer): Buffer | undefined {
  const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const out = decipher.update(data);
  try {
    decipher.final();
    return out;
  } catch {
    out.fill(0);
    return undefined;
  }
}
