import { describe, expect, it } from "vitest";
import { decodeChanges, describeError, encodeChanges } from "./change-message.js";

describe("change messages", () => {
  it("round-trips changes with and without their seq", () => {
    const [payload, ...rest] = encodeChanges("origin1", [
      { kind: "key", ref: "key_1", seq: 7 },
      { kind: "agent", ref: "echo" },
    ]);
    expect(rest).toEqual([]);
    expect(decodeChanges(payload as string)).toEqual({
      origin: "origin1",
      changes: [
        { kind: "key", ref: "key_1", seq: 7 },
        { kind: "agent", ref: "echo" },
      ],
    });
  });

  it("splits many changes into messages that fit a NOTIFY payload, losing none", () => {
    const changes = Array.from({ length: 2000 }, (_, i) => ({ kind: "key" as const, ref: `key_${i}`, seq: i + 1 }));
    const payloads = encodeChanges("o", changes);
    expect(payloads.length).toBeGreaterThan(1);
    for (const p of payloads) expect(Buffer.byteLength(p)).toBeLessThan(8000);
    expect(payloads.flatMap((p) => decodeChanges(p)?.changes ?? [])).toEqual(changes);
  });

  it.each([
    ["not json", "{"],
    ["no origin", JSON.stringify({ c: [] })],
    ["unknown kind", JSON.stringify({ o: "x", c: [["admin", "all"]] })],
    ["ref not a string", JSON.stringify({ o: "x", c: [["key", 1]] })],
    ["seq not an integer", JSON.stringify({ o: "x", c: [["key", "k", "7"]] })],
    ["extra fields", JSON.stringify({ o: "x", c: [["key", "k", 1, 2]] })],
  ])("rejects a malformed message (%s)", (_, payload) => {
    expect(decodeChanges(payload)).toBeUndefined();
  });

  it("never logs the password of a connection URL", () => {
    const err = Object.assign(new Error("connect to redis://user:s3cret-canary@10.0.0.1:6379 failed"), {
      code: "ECONNREFUSED",
    });
    const described = describeError(err);
    expect(JSON.stringify(described)).not.toContain("s3cret-canary");
    expect(described).toEqual({ code: "ECONNREFUSED", reason: "connect to redis://[redacted]@10.0.0.1:6379 failed" });
    expect(JSON.stringify(describeError(new Error("postgres://kw:pw-canary@db/x")))).not.toContain("pw-canary");
  });
});
