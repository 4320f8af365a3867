import { MASTER_KEY_BYTES } from "./keyring.js";

/**
 * Parses the retired master keys (`KEYWARD_MASTER_KEY_PREVIOUS`, or `master_key_previous` in the
 * config file): base64 keys separated by commas or whitespace, or a list. Retired keys only open
 * what they sealed; see README.md, "Rotating the master key". Errors say which entry is wrong and
 * why, never its value.
 */
export function parsePreviousMasterKeys(input: string | readonly string[] | undefined, source: string): Buffer[] {
  if (input === undefined) return [];
  const entries = (typeof input === "string" ? input.split(/[\s,]+/) : [...input]).map((s) => s.trim());
  const keys: Buffer[] = [];
  entries.forEach((entry, i) => {
    if (entry === "") return;
    const where = source ? `${source}: key ${i + 1}` : `key ${i + 1}`;
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(entry)) {
      throw new Error(`${where} is not valid base64: expected base64 of ${MASTER_KEY_BYTES} bytes`);
    }
    const key = Buffer.from(entry, "base64");
    if (key.length !== MASTER_KEY_BYTES) {
      throw new Error(`${where} must be base64 of exactly ${MASTER_KEY_BYTES} bytes, but decodes to ${key.length}`);
    }
    keys.push(key);
  });
  return keys;
}
