import { describe, expect, it } from "vitest";
import { createOutcomeTap, type Outcome } from "./outcomes.js";

const outcome: Outcome = { at: 1, surface: "gateway", code: "scope_denied", keyId: "key_1", agent: "alpha" };

describe("outcome tap", () => {
  it("hands every outcome to every listener until it is removed", () => {
    const tap = createOutcomeTap({ error: () => {} });
    const a: Outcome[] = [];
    const b: Outcome[] = [];
    const removeA = tap.subscribe((o) => a.push(o));
    tap.subscribe((o) => b.push(o));
    tap.record(outcome);
    removeA();
    tap.record({ ...outcome, code: "allowed" });
    expect(a.map((o) => o.code)).toEqual(["scope_denied"]);
    expect(b.map((o) => o.code)).toEqual(["scope_denied", "allowed"]);
  });

  it("a listener that throws never fails the request and is reported once", () => {
    const errors: string[] = [];
    const tap = createOutcomeTap({ error: (_obj: unknown, msg?: string) => errors.push(msg ?? "") });
    const seen: Outcome[] = [];
    tap.subscribe(() => {
      throw new Error("boom");
    });
    tap.subscribe((o) => seen.push(o));
    expect(() => {
      tap.record(outcome);
      tap.record(outcome);
    }).not.toThrow();
    expect(seen).toHaveLength(2);
    expect(errors).toEqual(["an outcome listener failed"]);
  });
});
