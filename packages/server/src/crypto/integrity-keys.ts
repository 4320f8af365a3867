import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";

/**
 * The MAC keys that let Keyward tell its own rows from rows written by someone holding only the
 * database (README.md, "Integrity keys"). Each purpose has its own HKDF-SHA256 label, so a MAC
 * made for one purpose never verifies for another; labels are versioned and never reused.
 */
export const SUBKEY_LABELS = {
  auditChain: "keyward audit chain v1",
  auditCheckpoint: "keyward audit checkpoint v1",
  secretHash: "keyward secret hash v1",
  legacyHash: "keyward legacy hash mark v1",
  recordBinding: "keyward record binding v1",
  credentialPointer: "keyward credential pointer v1",
  grant: "keyward grant v1",
  sessionCsrf: "keyward session csrf v1",
  oauthConsent: "keyward oauth consent v1",
} as const;

export type SubkeyPurpose = keyof typeof SUBKEY_LABELS;

export const INTEGRITY_ROOT_BYTES = 32;

export interface IntegrityKeys {
  /** HMAC-SHA256 under the purpose's subkey, hex. */
  mac(purpose: SubkeyPurpose, data: string): string;
  /** Constant-time check of a hex MAC made by `mac`. */
  verify(purpose: SubkeyPurpose, data: string, mac: string): boolean;
}

/** HKDF-SHA256(root, salt = empty, info = label): one 32-byte subkey per purpose. */
export function deriveSubkey(root: Buffer, purpose: SubkeyPurpose): Buffer {
  return Buffer.from(hkdfSync("sha256", root, Buffer.alloc(0), SUBKEY_LABELS[purpose], 32));
}

/** Derives every subkey once; the root itself is not kept. */
export function createIntegrityKeys(root: Buffer): IntegrityKeys {
  if (root.length !== INTEGRITY_ROOT_BYTES) throw new Error(`integrity root must be ${INTEGRITY_ROOT_BYTES} bytes`);
  const subkeys = new Map<SubkeyPurpose, Buffer>();
  for (const purpose of Object.keys(SUBKEY_LABELS) as SubkeyPurpose[])
    subkeys.set(purpose, deriveSubkey(root, purpose));
  const mac = (purpose: SubkeyPurpose, data: string): string =>
    createHmac("sha256", subkeys.get(purpose) as Buffer)
      .update(data, "utf8")
      .digest("hex");
  return {
    mac,
    verify(purpose, data, given) {
      // The shape is public (64 lowercase hex); only the comparison of the bytes must be constant-time.
      if (!/^[0-9a-f]{64}$/.test(given)) return false;
      return timingSafeEqual(Buffer.from(mac(purpose, data), "hex"), Buffer.from(given, "hex"));
    },
  };
}
