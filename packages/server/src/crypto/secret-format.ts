import { createHash, randomBytes } from "node:crypto";
import type { IntegrityKeys } from "./integrity-keys.js";

/**
 * Keyward secrets: `<prefix>_` + 32 base62 chars of randomness + 6 base62 chars of CRC32 checksum
 * (SPEC §2). The checksum lets us refuse typos and garbage without a store lookup; it is not a
 * security property (the randomness is: 32 × log2(62) ≈ 190 bits).
 */
export type SecretKind = "kwk" | "kwa" | "kwr" | "kwc";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BODY_LEN = 32;
const CHECK_LEN = 6;
const SHAPE = /^kw[karc]_[0-9A-Za-z]{38}$/;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(text: string): number {
  let c = 0xffffffff;
  for (let i = 0; i < text.length; i++) c = (CRC_TABLE[(c ^ text.charCodeAt(i)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function checksum(body: string): string {
  let n = crc32(body);
  let out = "";
  for (let i = 0; i < CHECK_LEN; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** Uniform base62 by rejection sampling (bytes ≥ 248 are dropped so no character is favoured). */
export function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248 && out.length < length) out += ALPHABET[b % 62];
    }
  }
  return out;
}

export function generateSecret(kind: SecretKind): string {
  const body = randomBase62(BODY_LEN);
  return `${kind}_${body}${checksum(body)}`;
}

/** Shape and checksum only: no I/O. */
export function isWellFormed(secret: string, kind: SecretKind): boolean {
  if (secret.length !== 42 || !secret.startsWith(`${kind}_`) || !SHAPE.test(secret)) return false;
  // A plain comparison is safe here: both sides derive from the caller's own input (the checksum
  // it sent, and the checksum of the body it sent), so timing reveals nothing it does not know.
  return checksum(secret.slice(4, 4 + BODY_LEN)) === secret.slice(4 + BODY_LEN);
}

/**
 * The stored form of a secret: `h1:` + HMAC-SHA256 under the secret-hash subkey
 * (crypto/integrity-keys.ts), hex. Keyed, so a row inserted with database access alone cannot
 * match any secret; the secret has 190 bits of entropy, so a fast MAC is enough.
 */
export function hashSecret(secret: string, keys: IntegrityKeys): string {
  return `${KEYED_HASH_PREFIX}${keys.mac("secretHash", secret)}`;
}

export const KEYED_HASH_PREFIX = "h1:";

/**
 * The form stored before keyed hashes: SHA-256, hex. Still computed to find rows written by an
 * older version, which are honoured only when marked legacy at the upgrade (legacy-hashes.ts).
 */
export function legacyHashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** What may be shown and logged: `kwk_` + the first 8 characters. */
export function secretPrefix(secret: string): string {
  return secret.slice(0, 12);
}

export function newId(prefix: string): string {
  return `${prefix}_${randomBase62(16)}`;
}
