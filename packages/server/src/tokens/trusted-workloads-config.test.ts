import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../config.js";

const dir = mkdtempSync(join(tmpdir(), "kw-wl-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Loads a config file holding `yaml`; answers the error's message, or the parsed workloads. */
function load(yaml: string): string | unknown {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  try {
    return loadConfig({ configFile: file, env: { KEYWARD_ADMIN_TOKEN: "a".repeat(40) } }).trusted_workloads;
  } catch (err) {
    return (err as Error).message;
  }
}

const BASE = { issuer: "https://k8s", jwks_uri: "https://k8s/openid/v1/jwks", audience: "keyward", agent: "research" };
/** A config file (JSON is YAML) with one rule: BASE with `extra` over it. */
const rule = (extra: Record<string, unknown> = {}, more: Record<string, unknown> = {}) =>
  JSON.stringify({ trusted_workloads: [{ ...BASE, ...extra }], ...more });

describe("trusted_workloads in the config file", () => {
  it("takes a rule with a subject or claims, with defaults for scopes, lifetime and algorithms", () => {
    expect(load(rule({ subject: "system:serviceaccount:research:agent" }))).toEqual([
      {
        issuer: "https://k8s",
        jwks_uri: "https://k8s/openid/v1/jwks",
        audience: "keyward",
        agent: "research",
        subject: "system:serviceaccount:research:agent",
        scopes: [],
        token_lifetime_s: 900,
        algorithms: ["RS256", "ES256"],
      },
    ]);
    expect(load(rule({ claims: { repository: "acme/agents", ref: "refs/heads/main" } }))).toMatchObject([
      { claims: { repository: "acme/agents", ref: "refs/heads/main" } },
    ]);
  });

  it("stops the start with one line naming the setting", () => {
    const issuer = { issuer: "https://k8s", jwks_uri: "https://k8s/jwks", audience: "x" };
    const bad: Array<[string, RegExp]> = [
      [rule(), /trusted_workloads.*needs subject or claims/],
      [rule({ claims: {} }), /trusted_workloads.*needs subject or claims/],
      [rule({ subject: "s", jwks_uri: "http://k8s.example/jwks" }), /trusted_workloads.*https/],
      [rule({ subject: "s", agent: "Research" }), /trusted_workloads.*agent name/],
      [rule({ subject: "s", algorithms: ["HS256"] }), /trusted_workloads/],
      [rule({ subject: "s", subject_prefix: "system" }), /trusted_workloads/],
      [rule({ subject: "s", token_lifetime_s: 10 }), /trusted_workloads/],
      [
        rule({ subject: "s" }, { trusted_issuers: [issuer] }),
        /trusted_workloads\[0\]\.issuer is also in trusted_issuers/,
      ],
      [
        JSON.stringify({
          trusted_workloads: [
            { ...BASE, subject: "s" },
            { ...BASE, audience: "y", agent: "other", subject: "s" },
          ],
        }),
        /trusted_workloads\[1\]: the same workload is already agent research/,
      ],
    ];
    for (const [yaml, why] of bad) {
      const message = load(yaml);
      expect(message).toMatch(why);
      expect(String(message).split("\n")).toHaveLength(1);
    }
  });

  it("http is accepted for a loopback jwks_uri only (a local test issuer)", () => {
    expect(load(rule({ subject: "s", jwks_uri: "http://127.0.0.1:9/jwks" }))).toMatchObject([{ subject: "s" }]);
  });
});
