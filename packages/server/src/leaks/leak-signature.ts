import { createPublicKey, createVerify, type KeyObject } from "node:crypto";

/** The reporters' keys by identifier (`leaks.public_keys`), parsed once at start. */
export type ReporterKeys = ReadonlyMap<string, KeyObject>;

export function reporterKeys(keys: ReadonlyArray<{ id: string; pem: string }>): ReporterKeys {
  return new Map(keys.map((k) => [k.id, createPublicKey(k.pem)]));
}

/**
 * The secret-scanning partner signature: `Github-Public-Key-Signature` is the base64 of an ECDSA
 * P-256 / SHA-256 signature (ASN.1 DER) over the raw body, made with the key the
 * `Github-Public-Key-Identifier` names. Pinned: a key of ours, that algorithm; nothing in the
 * request chooses either.
 */
export function verifyReport(
  keys: ReporterKeys,
  keyId: string | undefined,
  signature: string | undefined,
  body: Buffer,
): boolean {
  if (!keyId || !signature || signature.length > 512) return false;
  const key = keys.get(keyId);
  if (!key) return false;
  try {
    return createVerify("sha256").update(body).verify({ key, dsaEncoding: "der" }, Buffer.from(signature, "base64"));
  } catch {
    return false;
  }
}
