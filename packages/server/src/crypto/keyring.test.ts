import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createKeyring, masterKeyId } from "./keyring.js";

/** Bytes 69… of an envelope: the value's iv, tag and ciphertext (see envelope.ts). */
const VALUE_OFFSET = 69;
const AAD = "credentials:stripe:value";

describe("keyring", () => {
  it("round-trips values of any size, each sealed differently", () => {
    const ring = createKeyring({ active: randomBytes(32) });
    for (const size of [0, 1, 31, 32, 33, 4096, 1 << 20]) {
      const plaintext = randomBytes(size);
      const sealed = ring.seal(plaintext, AAD);
      expect(sealed.length).toBe(97 + size);
      expect(ring.open(sealed, AAD).equals(plaintext)).toBe(true);
    }
    const a = ring.seal(Buffer.from("same"), AAD);
    const b = ring.seal(Buffer.from("same"), AAD);
    expect(a.equals(b)).toBe(false);
  });

  it("names the master key by a stable fingerprint that is not the key", () => {
    const key = randomBytes(32);
    const ring = createKeyring({ active: key });
    expect(ring.activeKeyId).toMatch(/^[0-9a-f]{16}$/);
    expect(ring.activeKeyId).toBe(masterKeyId(Buffer.from(key)));
    expect(createKeyring({ active: Buffer.from(key) }).activeKeyId).toBe(ring.activeKeyId);
    expect(createKeyring({ active: randomBytes(32) }).activeKeyId).not.toBe(ring.activeKeyId);
    expect(key.toString("hex")).not.toContain(ring.activeKeyId);
    expect(ring.keyIdOf(ring.seal(Buffer.from("x"), AAD))).toBe(ring.activeKeyId);
  });

  it("rejects master keys that are not 32 bytes", () => {
    expect(() => createKeyring({ active: randomBytes(31) })).toThrow(/32 bytes/);
    expect(() => createKeyring({ active: randomBytes(33) })).toThrow(/32 bytes/);
    expect(() => createKeyring({ active: randomBytes(32), retired: [randomBytes(16)] })).toThrow(/32 bytes/);
  });

  it("keeps its own copy of the key, so a caller wiping its buffer changes nothing", () => {
    const key = randomBytes(32);
    const ring = createKeyring({ active: key });
    const sealed = ring.seal(Buffer.from("secret"), AAD);
    key.fill(0);
    expect(ring.open(sealed, AAD).toString()).toBe("secret");
    expect(ring.keyIdOf(ring.seal(Buffer.from("y"), AAD))).toBe(ring.activeKeyId);
  });

  it("opens values sealed under a retired master key", () => {
    const oldKey = randomBytes(32);
    const sealed = createKeyring({ active: oldKey }).seal(Buffer.from("legacy"), AAD);
    const ring = createKeyring({ active: randomBytes(32), retired: [oldKey] });
    expect(ring.keyIdOf(sealed)).toBe(masterKeyId(oldKey));
    expect(ring.open(sealed, AAD).toString()).toBe("legacy");
  });

  it("rewraps under the active key without touching the value bytes", () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const sealed = createKeyring({ active: oldKey }).seal(Buffer.from("rotate me"), AAD);
    const ring = createKeyring({ active: newKey, retired: [oldKey] });

    const rewrapped = ring.rewrap(sealed, AAD);
    expect(ring.keyIdOf(rewrapped)).toBe(masterKeyId(newKey));
    expect(rewrapped.subarray(VALUE_OFFSET).equals(sealed.subarray(VALUE_OFFSET))).toBe(true);
    expect(rewrapped.subarray(0, VALUE_OFFSET).equals(sealed.subarray(0, VALUE_OFFSET))).toBe(false);

    // Only the new key is needed from now on.
    const newOnly = createKeyring({ active: newKey });
    expect(newOnly.open(rewrapped, AAD).toString()).toBe("rotate me");

    // Idempotent: a value already under the active key comes back byte for byte.
    expect(ring.rewrap(rewrapped, AAD).equals(rewrapped)).toBe(true);
    expect(newOnly.rewrap(rewrapped, AAD).equals(rewrapped)).toBe(true);
  });
});
