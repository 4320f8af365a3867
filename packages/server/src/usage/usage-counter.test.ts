import { describe, expect, it } from "vitest";
import type { Outcome } from "../anomaly/outcomes.js";
import { createUsageCounter } from "./usage-counter.js";

/** The bounds on what one replica holds between two flushes, at the bound. */

const at = Date.UTC(2026, 2, 10, 12);
const outcome = (agent: string, ip = "192.0.2.1"): Outcome => ({
  at,
  surface: "gateway",
  code: "scope_denied",
  keyId: "key_a",
  owner: "consumer:acme",
  agent,
  ip,
});

describe("usage counter bounds", () => {
  it("holds at most maxCounters counters: a key probing new agent names is counted up to the bound, the rest reported dropped", () => {
    const counter = createUsageCounter({ maxCounters: 1000, addressesPerKey: 20 });
    for (let i = 0; i < 1000; i++) counter.record(outcome(`probe-${i}`));
    counter.record(outcome("probe-0")); // an existing counter still counts
    counter.record(outcome("probe-1000"));
    counter.record(outcome("probe-1001"));
    const batch = counter.drain();
    expect(batch.counts).toHaveLength(1000);
    expect(batch.counts.find((c) => c.agent === "probe-0")?.n).toBe(2);
    expect(batch.dropped).toBe(2);
    // A drain starts the next interval empty.
    counter.record(outcome("probe-1000"));
    expect(counter.drain()).toMatchObject({ counts: [{ agent: "probe-1000", n: 1 }], dropped: 0 });
  });

  it("remembers at most addressesPerKey addresses per key, dropping the least recently seen", () => {
    const counter = createUsageCounter({ maxCounters: 1000, addressesPerKey: 3 });
    for (let i = 0; i < 5; i++) counter.record({ ...outcome("echo", `198.51.100.${i}`), at: at + i });
    counter.record({ ...outcome("echo", "198.51.100.2"), at: at + 10 });
    const { addresses } = counter.drain();
    expect(addresses.map((a) => a.ip).sort()).toEqual(["198.51.100.2", "198.51.100.3", "198.51.100.4"]);
    expect(addresses.find((a) => a.ip === "198.51.100.2")).toMatchObject({
      n: 2,
      firstSeen: at + 2,
      lastSeen: at + 10,
    });
  });

  it("counts nothing without a key", () => {
    const counter = createUsageCounter({ maxCounters: 1000, addressesPerKey: 3 });
    const { keyId: _, ...keyless } = outcome("echo");
    counter.record({ ...keyless, code: "invalid_key" });
    expect(counter.drain()).toEqual({ counts: [], addresses: [], dropped: 0 });
  });
});
