import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { recordingAudit } from "../../test-support/recording-audit.js";
import { frozenClock } from "../clock.js";
import { createDenialSampler } from "./denial-sampler.js";

const deny = (ip: string) => ({ actor: "anonymous", action: "gateway.deny", outcome: "denied" as const, ip });

function setup(limits = { perAddressPerMinute: 3, perMinute: 10, maxAddresses: 4 }) {
  const clock = frozenClock();
  const audit = recordingAudit();
  const registry = new Registry();
  const sampler = createDenialSampler({ audit, clock, limits, registry });
  const metric = async () =>
    Number(/^keyward_audit_denials_suppressed_total (\d+)/m.exec(await registry.metrics())?.[1]);
  return { clock, audit, sampler, metric };
}

describe("denial sampler", () => {
  it("records an address's budget, then one summary when the window ends, then a fresh budget", async () => {
    const { clock, audit, sampler, metric } = setup();
    for (let i = 0; i < 100; i++) sampler.record(deny("1.1.1.1"));
    expect(audit.events).toHaveLength(3);
    expect(await metric()).toBe(97);
    clock.advance(60_000);
    sampler.record(deny("1.1.1.1"));
    expect(audit.events.slice(3)).toEqual([
      expect.objectContaining({
        action: "audit.denials_suppressed",
        ip: "1.1.1.1",
        details: { suppressed: 97, window_s: 60, reason: "per_address" },
      }),
      expect.objectContaining({ action: "gateway.deny", ip: "1.1.1.1" }),
    ]);
    sampler.close();
  });

  it("caps all addresses together, and a forgotten address's count goes to the global summary", () => {
    const { audit, sampler } = setup();
    for (let i = 0; i < 50; i++) sampler.record(deny(`10.0.0.${i}`));
    for (let i = 0; i < 5; i++) sampler.record(deny("10.0.0.49"));
    expect(audit.events.filter((e) => e.action === "gateway.deny")).toHaveLength(10);
    sampler.close();
    const summaries = audit.events.filter((e) => e.action === "audit.denials_suppressed");
    const total = summaries.reduce((n, e) => n + (e.details?.suppressed as number), 0);
    expect(total).toBe(45);
    // Bounded: one per address cut (at most perMinute / perAddressPerMinute) plus the global one.
    expect(summaries.length).toBeLessThanOrEqual(10 / 3 + 1);
  });

  it("an address that keeps sending stays tracked while a spray of new addresses passes by", () => {
    const { audit, sampler } = setup({ perAddressPerMinute: 3, perMinute: 1_000, maxAddresses: 4 });
    for (let i = 0; i < 40; i++) {
      sampler.record(deny("6.6.6.6"));
      sampler.record(deny(`10.0.0.${i}`));
    }
    // Least recently seen is forgotten first: the flooding address never got a fresh budget.
    expect(audit.events.filter((e) => e.action === "gateway.deny" && e.ip === "6.6.6.6")).toHaveLength(3);
    sampler.close();
    expect(audit.events).toContainEqual(
      expect.objectContaining({ ip: "6.6.6.6", details: expect.objectContaining({ suppressed: 37 }) }),
    );
  });

  it("a zero budget records only the summaries", () => {
    const { audit, sampler } = setup({ perAddressPerMinute: 0, perMinute: 0, maxAddresses: 10 });
    for (let i = 0; i < 20; i++) sampler.record(deny("2.2.2.2"));
    sampler.flush();
    expect(audit.events).toEqual([expect.objectContaining({ details: expect.objectContaining({ suppressed: 20 }) })]);
    sampler.close();
  });
});
