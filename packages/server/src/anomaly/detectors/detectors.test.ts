import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openTestSqlite } from "../../../test-support/databases.js";
import type { Db } from "../../store/db.js";
import { type AnomalyRule, anomaliesSchema } from "../anomaly-config.js";
import type { Outcome } from "../outcomes.js";
import { createSharedWindows } from "../shared-windows.js";
import type { Detector, Finding } from "./detector.js";
import { DETECTOR_FACTORIES } from "./index.js";
import { networkOf } from "./network.js";

const T0 = Date.UTC(2026, 0, 1);

describe("networkOf", () => {
  it.each([
    ["203.0.113.77", "203.0.113.0/24"],
    ["::ffff:203.0.113.77", "203.0.113.0/24"],
    ["2001:db8:1:2::5", "2001:db8:1::/48"],
    ["2001:0db8:0001:ffff:0:0:0:1", "2001:db8:1::/48"],
    ["::1", "0:0:0::/48"],
    ["fe80::1%eth0", "fe80:0:0::/48"],
  ])("%s is in %s", (ip, net) => {
    expect(networkOf(ip)).toBe(net);
  });
  it("is undefined for what is not an address", () => {
    expect(networkOf("not-an-ip")).toBeUndefined();
    expect(networkOf("")).toBeUndefined();
  });
});

/** One detector of `rule` on a real store, with what it reported. */
function harness(db: Db, rule: Partial<Record<string, unknown>> & { detector: string }, maxSubjects = 1000) {
  const parsed = anomaliesSchema.parse({ rules: [{ name: "r", ...rule }] }).rules[0] as AnomalyRule;
  const findings: Finding[] = [];
  const detector: Detector = DETECTOR_FACTORIES[parsed.detector]({
    rule: parsed,
    shared: createSharedWindows(db),
    report: (f) => findings.push(f),
    maxSubjects,
    isCanary: () => false,
  });
  return { detector, findings, rule: parsed };
}

const outcome = (over: Partial<Outcome>): Outcome => ({ at: T0, surface: "gateway", code: "allowed", ...over });

describe("detectors on a real store", () => {
  let db: Db;
  beforeEach(async () => {
    db = await openTestSqlite();
  });
  afterEach(() => db.close());

  it("denial_spike: the threshold alone is not enough when most of the key's requests are allowed", async () => {
    const busy = harness(db, { detector: "denial_spike", threshold: 10, min_ratio: 0.5 });
    for (let i = 0; i < 30; i++) busy.detector.observe(outcome({ keyId: "key_busy" }));
    for (let i = 0; i < 12; i++) busy.detector.observe(outcome({ keyId: "key_busy", code: "scope_denied" }));
    await busy.detector.flush();
    expect(busy.findings).toEqual([]);
    for (let i = 0; i < 12; i++) busy.detector.observe(outcome({ keyId: "key_bad", code: "key_frozen" }));
    await busy.detector.flush();
    expect(busy.findings).toEqual([
      expect.objectContaining({ keyId: "key_bad", evidence: expect.objectContaining({ denials: 12, ratio: 1 }) }),
    ]);
  });

  it("denial_spike: replicas that each stay under the threshold cross it together", async () => {
    const replicas = [0, 1, 2].map(() => harness(db, { detector: "denial_spike", threshold: 30 }));
    for (const r of replicas)
      for (let i = 0; i < 10; i++) r.detector.observe(outcome({ keyId: "key_a", code: "scope_denied" }));
    for (const r of replicas) await r.detector.flush();
    expect(replicas.flatMap((r) => r.findings).map((f) => f.evidence.denials)).toEqual([30]);
  });

  it("volume_spike: quiet after a steady baseline, alerts on a burst over mean + k·dev and the floor", async () => {
    const v = harness(db, { detector: "volume_spike", threshold: 20, deviations: 4 });
    for (let minute = 0; minute < 5; minute++) {
      for (let i = 0; i < 8 + (minute % 2); i++)
        v.detector.observe(outcome({ keyId: "key_v", at: T0 + minute * 60_000 }));
      await v.detector.flush();
    }
    expect(v.findings).toEqual([]);
    for (let i = 0; i < 19; i++) v.detector.observe(outcome({ keyId: "key_v", at: T0 + 5 * 60_000 }));
    await v.detector.flush();
    expect(v.findings).toEqual([]); // above the baseline, under the floor
    v.detector.observe(outcome({ keyId: "key_v", at: T0 + 5 * 60_000 + 1 }));
    await v.detector.flush();
    expect(v.findings).toHaveLength(1);
    expect(v.findings[0]?.evidence).toMatchObject({ count: 20, floor: 20 });
  });

  it("volume_spike: a new key has no baseline to spike over", async () => {
    const v = harness(db, { detector: "volume_spike", threshold: 5 });
    for (let i = 0; i < 500; i++) v.detector.observe(outcome({ keyId: "key_new" }));
    await v.detector.flush();
    expect(v.findings).toEqual([]);
  });

  it("scope_probe counts distinct agents, not refusals", async () => {
    const p = harness(db, { detector: "scope_probe", threshold: 3 });
    for (let i = 0; i < 50; i++)
      p.detector.observe(outcome({ keyId: "key_p", code: "scope_denied", agent: "billing" }));
    p.detector.observe(outcome({ keyId: "key_p", code: "agent_not_found", agent: "payroll" }));
    await p.detector.flush();
    expect(p.findings).toEqual([]);
    p.detector.observe(outcome({ keyId: "key_p", code: "scope_denied", agent: "hr" }));
    await p.detector.flush();
    expect(p.findings.map((f) => f.evidence.agents)).toEqual([3]);
  });

  it("new_network: a store outage during learning delays it and loses no network", async () => {
    const rule = anomaliesSchema.parse({ rules: [{ name: "r", detector: "new_network", learning_s: 60 }] })
      .rules[0] as AnomalyRule;
    const real = createSharedWindows(db);
    let down = false;
    const shared: typeof real = {
      ...real,
      addMember: (m) => (down ? Promise.reject(new Error("store unavailable")) : real.addMember(m)),
    };
    const findings: Finding[] = [];
    const detector = DETECTOR_FACTORIES.new_network({
      ...{ rule, shared, maxSubjects: 1000 },
      report: (f) => findings.push(f),
      isCanary: () => false,
    });
    detector.observe(outcome({ keyId: "key_n", ip: "198.51.100.7" }));
    await detector.flush();
    // After the learning period, a new network is seen while the store is down.
    detector.observe(outcome({ keyId: "key_n", ip: "203.0.113.9", at: T0 + 120_000 }));
    down = true;
    await expect(detector.flush()).rejects.toThrow("store unavailable");
    expect(findings).toEqual([]);
    down = false;
    await detector.flush();
    expect(findings.map((f) => f.evidence.network)).toEqual(["203.0.113.0/24"]);
  });

  it("keeps state for at most maxSubjects keys however many keys it sees", async () => {
    const d = harness(db, { detector: "denial_spike", threshold: 4 }, 100);
    for (let i = 0; i < 10_000; i++) d.detector.observe(outcome({ keyId: `key_${i}`, code: "invalid_token" }));
    // The last 100 keys are remembered; a flood of new ones pushed the first ones out.
    for (let n = 0; n < 3; n++) d.detector.observe(outcome({ keyId: "key_9999", code: "invalid_token" }));
    d.detector.observe(outcome({ keyId: "key_0", code: "invalid_token" }));
    await d.detector.flush();
    expect(d.findings.map((f) => f.keyId)).toEqual(["key_9999"]);
  });
});
