import { createSecretKey, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseEnvelope, unwrapDataKey, wrapEnvelope } from "./envelope.js";
import { createKeyring, DecryptError, masterKeyId } from "./keyring.js";

// Layout from envelope.ts.
const WRAPPED_KEY = { from: 21, to: 53 };
const VALUE_OFFSET = 69;
const CIPHERTEXT_OFFSET = 97;

const masterKey = randomBytes(32);
const ring = createKeyring({ active: masterKey });
const PLAINTEXT = Buffer.from("sk_live_do-not-leak-this-value-0123456789");
const AAD = "signing_keys:kid-a:private";

/** Expects `fn` to throw a DecryptError that carries neither the plaintext nor the master key. */
function expectDecryptError(fn: () => unknown, message?: RegExp): DecryptError {
  let caught: unknown;
  let result: unknown;
  try {
    result = fn();
  } catch (err) {
    caught = err;
  }
  expect(result).toBeUndefined();
  expect(caught).toBeInstanceOf(DecryptError);
  const err = caught as DecryptError;
  const everything = `${err.message}\n${err.stack}\n${JSON.stringify(err)}\n${String(err.cause)}`;
  expect(everything).not.toContain(PLAINTEXT.toString());
  expect(everything).not.toContain(masterKey.toString("hex"));
  expect(everything).not.toContain(masterKey.toString("base64"));
  if (message) expect(err.message).toMatch(message);
  return err;
}

function flipped(buf: Buffer, index: number, bit = 0): Buffer {
  const copy = Buffer.from(buf);
  copy[index] = copy[index]! ^ (1 << bit);
  return copy;
}

describe("keyring security", () => {
  const sealed = ring.seal(PLAINTEXT, AAD);

  it("refuses the wrong aad, including another row's", () => {
    expectDecryptError(() => ring.open(sealed, "signing_keys:kid-b:private"), /authentication failed/);
    expectDecryptError(() => ring.open(sealed, "signing_keys:kid-a:public"));
    expectDecryptError(() => ring.open(sealed, ""));
    expectDecryptError(() => ring.rewrap(sealed, "signing_keys:kid-b:private"));
    expect(ring.open(sealed, AAD).equals(PLAINTEXT)).toBe(true);
  });

  it("refuses a flipped bit in the wrapped data key", () => {
    for (let i = WRAPPED_KEY.from; i < WRAPPED_KEY.to; i++) {
      expectDecryptError(() => ring.open(flipped(sealed, i, i % 8), AAD), /authentication failed/);
    }
  });

  it("refuses a flipped bit in the ciphertext, and rewrap does not carry it forward", () => {
    for (let i = CIPHERTEXT_OFFSET; i < sealed.length; i++) {
      expectDecryptError(() => ring.open(flipped(sealed, i, i % 8), AAD), /authentication failed/);
    }
    const retiring = createKeyring({ active: randomBytes(32), retired: [masterKey] });
    expectDecryptError(() => retiring.rewrap(flipped(sealed, sealed.length - 1), AAD));
  });

  it("refuses any single-bit change anywhere in the envelope", () => {
    for (let i = 0; i < sealed.length; i++) {
      for (let bit = 0; bit < 8; bit++) expectDecryptError(() => ring.open(flipped(sealed, i, bit), AAD));
    }
  });

  it("refuses truncated and extended input", () => {
    for (let len = 0; len < sealed.length; len++) {
      expectDecryptError(() => ring.open(sealed.subarray(0, len), AAD));
    }
    expectDecryptError(() => ring.open(Buffer.concat([sealed, Buffer.of(0)]), AAD));
    expectDecryptError(() => ring.keyIdOf(Buffer.alloc(10)), /truncated/);
  });

  it("names an unknown master key by its id", () => {
    const other = randomBytes(32);
    const foreign = createKeyring({ active: other }).seal(PLAINTEXT, AAD);
    const id = masterKeyId(other);
    expectDecryptError(() => ring.open(foreign, AAD), new RegExp(`sealed under master key ${id}, which is not loaded`));
    expectDecryptError(() => ring.rewrap(foreign, AAD), /not loaded/);
  });

  it("refuses a header edited to name another loaded master key", () => {
    const second = randomBytes(32);
    const both = createKeyring({ active: masterKey, retired: [second] });
    const edited = Buffer.from(sealed);
    Buffer.from(masterKeyId(second), "hex").copy(edited, 1);
    expect(both.keyIdOf(edited)).toBe(masterKeyId(second));
    expectDecryptError(() => both.open(edited, AAD), /authentication failed/);
  });

  it("refuses an unknown envelope version", () => {
    const v2 = Buffer.from(sealed);
    v2[0] = 2;
    expectDecryptError(() => ring.open(v2, AAD), /version 2/);
  });

  it("refuses a value spliced onto another record's wrapped key, even with the same aad", () => {
    const other = ring.seal(Buffer.from("other value"), AAD);
    const spliced = Buffer.concat([other.subarray(0, VALUE_OFFSET), sealed.subarray(VALUE_OFFSET)]);
    expectDecryptError(() => ring.open(spliced, AAD), /authentication failed/);
  });

  it("binds the value itself to the aad, not only the wrapped key", () => {
    // An attacker who could re-wrap a data key for another row still cannot move the value there.
    const env = parseEnvelope(sealed);
    const master = createSecretKey(masterKey);
    const dataKey = unwrapDataKey(master, env, AAD);
    const moved = wrapEnvelope(master, ring.activeKeyId, dataKey, env.value, "signing_keys:kid-b:private");
    expectDecryptError(() => ring.open(moved, "signing_keys:kid-b:private"), /authentication failed/);
    // Control: the same construction with the original aad opens.
    expect(ring.open(wrapEnvelope(master, ring.activeKeyId, dataKey, env.value, AAD), AAD).equals(PLAINTEXT)).toBe(
      true,
    );
  });
});
