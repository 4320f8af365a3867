import { describe, expect, it } from "vitest";
import { Backoff } from "./backoff.js";

describe("Backoff", () => {
  it("doubles the ceiling per failure up to the cap, with full jitter, and resets on success", () => {
    const draws = [0.5, 0.999, 0, 0.25, 0.999, 0.999, 0.999, 0.999];
    const b = new Backoff(100, 1_000, () => draws.shift()!);
    expect([b.fail(), b.fail(), b.fail(), b.fail(), b.fail(), b.fail()]).toEqual([50, 199, 0, 200, 999, 999]);
    expect(b.failures).toBe(6);
    b.succeed();
    expect(b.failures).toBe(0);
    expect(b.fail()).toBe(99);
  });

  it("never overflows after very many failures", () => {
    const b = new Backoff(500, 30_000, () => 0.999);
    for (let i = 0; i < 5_000; i++) b.fail();
    expect(b.fail()).toBe(29_970);
  });
});
