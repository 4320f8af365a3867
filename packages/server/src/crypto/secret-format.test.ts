import { crc32 as zlibCrc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { crc32, generateSecret, isWellFormed, legacyHashSecret, randomBase62, secretPrefix } from "./secret-format.js";

describe("key format", () => {
  it("is kwk_ + 32 base62 + 6 base62 checksum", () => {
    const k = generateSecret("kwk");
    expect(k).toMatch(/^kwk_[0-9A-Za-z]{38}$/);
    expect(isWellFormed(k, "kwk")).toBe(true);
    expect(isWellFormed(k, "kwa")).toBe(false);
  });

  it("checksum is CRC32 of the 32 random chars, base62, left-padded with 0", () => {
    const body = "0".repeat(32);
    const n = crc32(body);
    expect(n).toBe(zlibCrc32(body));
    let check = "";
    let v = n;
    const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for (let i = 0; i < 6; i++) {
      check = alphabet[v % 62] + check;
      v = Math.floor(v / 62);
    }
    expect(isWellFormed(`kwk_${body}${check}`, "kwk")).toBe(true);
  });

  it("rejects any single-character change, wrong lengths and foreign characters", () => {
    const k = generateSecret("kwk");
    for (let i = 4; i < k.length; i++) {
      const c = k[i] === "a" ? "b" : "a";
      const typo = k.slice(0, i) + c + k.slice(i + 1);
      // CRC32 detects every single-character substitution.
      expect(isWellFormed(typo, "kwk")).toBe(false);
    }
    expect(isWellFormed(k.slice(0, -1), "kwk")).toBe(false);
    expect(isWellFormed(`${k}0`, "kwk")).toBe(false);
    expect(isWellFormed(`${k.slice(0, 10)}-${k.slice(11)}`, "kwk")).toBe(false);
    expect(isWellFormed("", "kwk")).toBe(false);
  });

  it("draws characters uniformly enough and never repeats a secret", () => {
    const counts = new Map<string, number>();
    const s = randomBase62(62 * 2000);
    for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect(counts.size).toBe(62);
    for (const n of counts.values()) expect(n).toBeGreaterThan(1500); // expected 2000 each
    const seen = new Set(Array.from({ length: 2000 }, () => generateSecret("kwk")));
    expect(seen.size).toBe(2000);
  });

  it("stores SHA-256 hex and shows only the prefix", () => {
    const k = generateSecret("kwk");
    expect(legacyHashSecret(k)).toMatch(/^[0-9a-f]{64}$/);
    expect(legacyHashSecret(k)).not.toContain(k.slice(4, 20));
    expect(secretPrefix(k)).toBe(k.slice(0, 12));
  });
});
