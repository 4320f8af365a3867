import { createHmac, hkdfSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createIntegrityKeys, deriveSubkey, SUBKEY_LABELS } from "./integrity-keys.js";

describe("integrity subkeys", () => {
  const root = Buffer.alloc(32, 3);
  const keys = createIntegrityKeys(root);

  it("are HKDF-SHA256 of the root with one label per purpose", () => {
    const expected = Buffer.from(hkdfSync("sha256", root, Buffer.alloc(0), "keyward audit chain v1", 32));
    expect(deriveSubkey(root, "auditChain")).toEqual(expected);
    expect(keys.mac("auditChain", "x")).toBe(createHmac("sha256", expected).update("x").digest("hex"));
    expect(new Set(Object.values(SUBKEY_LABELS)).size).toBe(Object.keys(SUBKEY_LABELS).length);
  });

  it("separate purposes: a MAC for one never verifies for another", () => {
    const mac = keys.mac("auditChain", "data");
    expect(keys.verify("auditChain", "data", mac)).toBe(true);
    expect(keys.verify("auditCheckpoint", "data", mac)).toBe(false);
    expect(keys.verify("secretHash", "data", mac)).toBe(false);
  });

  it("refuse malformed MACs and a root of the wrong size", () => {
    expect(keys.verify("auditChain", "data", "")).toBe(false);
    expect(keys.verify("auditChain", "data", keys.mac("auditChain", "data").toUpperCase())).toBe(false);
    expect(() => createIntegrityKeys(Buffer.alloc(16))).toThrow();
  });
});
