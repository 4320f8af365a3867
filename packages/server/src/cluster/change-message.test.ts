import { describe, expect, it } from "vitest";
import { decodeChanges, encodeChanges } from "./change-message.js";

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
});
