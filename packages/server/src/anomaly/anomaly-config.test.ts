import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../config.js";

const dir = mkdtempSync(join(tmpdir(), "kw-anomalies-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function load(yaml: string) {
  const file = join(dir, `k${n++}.yaml`);
  writeFileSync(file, yaml);
  return loadConfig({ env: {}, configFile: file });
}

function failure(yaml: string): string {
  try {
    load(yaml);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("the configuration was accepted");
}

describe("anomalies: rules", () => {
  it("defaults to a denial_spike and a canary rule, both alerting", () => {
    const rules = loadConfig({ env: {} }).anomalies.rules;
    expect(rules.map((r) => [r.name, r.detector, r.action, r.dryRun])).toEqual([
      ["denial-spike", "denial_spike", "alert", false],
      ["canary", "canary", "alert", false],
    ]);
    expect(rules[0]).toMatchObject({ threshold: 50, windowS: 60, minRatio: 0.5 });
    expect(rules[1]?.severity).toBe("critical");
  });

  it("takes the SPEC's example, fills defaults, and keeps the canary rule when rules name none", () => {
    const rules = load(`anomalies:
  rules:
    - name: probe-freeze
      detector: denial_spike
      threshold: 50
      window_s: 60
      action: freeze
      dry_run: false
    - { name: spikes, detector: volume_spike, deviations: 6, alpha: 0.2 }
`).anomalies.rules;
    expect(rules.map((r) => r.name)).toEqual(["probe-freeze", "spikes", "canary"]);
    expect(rules[0]).toMatchObject({ action: "freeze", dryRun: false, threshold: 50, windowS: 60 });
    expect(rules[1]).toMatchObject({ threshold: 100, windowS: 60, deviations: 6, alpha: 0.2 });
  });

  it("enabled: false turns every detector off", () => {
    expect(load("anomalies: { enabled: false }").anomalies).toMatchObject({ enabled: false });
  });

  it.each([
    ["- { name: weird, detector: telepathy }", /rule "weird": detector: must be one of denial_spike, /],
    ["- { name: back, detector: denial_spike, window_s: -5 }", /rule "back": window_s: must be greater than 0/],
    ["- { name: zero, detector: scope_probe, threshold: 0 }", /rule "zero": threshold: must be greater than 0/],
    [
      "- { name: twice, detector: canary }\n    - { name: twice, detector: denial_spike }",
      /rule "twice": duplicate rule name/,
    ],
    ["- { name: typo, detector: canary, treshold: 3 }", /rule "typo": unknown setting treshold/],
    ["- { name: act, detector: canary, action: explode }", /rule "act": action: /],
    ["- { detector: canary }", /rule #1: name: /],
  ])("stops the start with one line naming the rule: %s", (rule, message) => {
    const text = failure(`anomalies:\n  rules:\n    ${rule}\n`);
    expect(text).toMatch(/^invalid configuration: anomalies in .*k\d+\.yaml: /);
    expect(text).toMatch(message);
    expect(text).not.toContain("\n");
  });
});
