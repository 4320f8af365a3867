import { describe, expect, it } from "vitest";
import { parseCidrList } from "../http/client-ip.js";
import type { KeyEntry } from "../keys/key-entry.js";
import { ipAllowed, keyDenial } from "./key-usability.js";

const NOW = 1_800_000_000_000;

function entry(over: Partial<KeyEntry> = {}): KeyEntry {
  return {
    id: "key_a",
    prefix: "kwk_abcd",
    owner: "agent:w",
    scopes: [],
    scopeSet: new Set(),
    status: "active",
    expiresAt: null,
    rateLimit: null,
    quota: null,
    ipAllow: null,
    ipSeen: new Map(),
    rotatedTo: null,
    lineage: "key_a",
    canary: false,
    ...over,
  };
}

describe("keyDenial: the one rule for a usable key", () => {
  it("an active key without expiry is usable", () => {
    expect(keyDenial(entry(), NOW)).toBeUndefined();
    expect(keyDenial(entry({ expiresAt: NOW + 1 }), NOW)).toBeUndefined();
  });

  it("revoked, frozen and expired keys are refused with their codes", () => {
    expect(keyDenial(entry({ status: "revoked" }), NOW)?.code).toBe("key_revoked");
    expect(keyDenial(entry({ status: "frozen" }), NOW)?.code).toBe("key_frozen");
    expect(keyDenial(entry({ expiresAt: NOW }), NOW)?.code).toBe("key_expired");
  });

  it("a key retired by rotation is usable only until its grace ends, and never without one", () => {
    expect(keyDenial(entry({ rotatedTo: "key_b", expiresAt: NOW + 5000 }), NOW)).toBeUndefined();
    expect(keyDenial(entry({ rotatedTo: "key_b", expiresAt: NOW }), NOW)?.code).toBe("key_expired");
    expect(keyDenial(entry({ rotatedTo: "key_b", expiresAt: null }), NOW)?.code).toBe("key_expired");
  });
});

describe("keyDenial: canary keys", () => {
  it("a canary is refused as an unknown key whatever its state, so its state cannot show it exists", () => {
    for (const over of [{}, { status: "frozen" as const }, { status: "revoked" as const }, { expiresAt: NOW }]) {
      expect(keyDenial(entry({ canary: true, ...over }), NOW)).toEqual({
        code: "invalid_key",
        message: "the API key is not valid",
      });
    }
  });
});

describe("ipAllowed", () => {
  it("no allowlist allows every address; an allowlist only its networks", () => {
    expect(ipAllowed(entry(), "198.51.100.1")).toBe(true);
    const key = entry({ ipAllow: parseCidrList(["10.0.0.0/8", "2001:db8::/32"]) });
    expect(ipAllowed(key, "10.1.2.3")).toBe(true);
    expect(ipAllowed(key, "2001:db8::1")).toBe(true);
    expect(ipAllowed(key, "11.0.0.1")).toBe(false);
    expect(ipAllowed(key, "not an ip")).toBe(false);
  });

  it("keeps a bounded memo of answers", () => {
    const key = entry({ ipAllow: parseCidrList(["10.0.0.0/8"]) });
    for (let i = 0; i < 1000; i++) ipAllowed(key, `10.0.${i >> 8}.${i & 255}`);
    expect(key.ipSeen.size).toBeLessThanOrEqual(256);
  });
});
