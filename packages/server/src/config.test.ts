import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.js";

describe("configuration", () => {
  it("has working defaults", () => {
    const c = loadConfig({ env: {} });
    expect(c.port).toBe(8080);
    expect(c.host).toBe("127.0.0.1");
    expect(c.data_dir).toBe("./.keyward");
    expect(c.audit_fail_closed).toBe(true);
    expect(c.master_key).toBeUndefined();
  });

  it("takes file < env < flags", () => {
    const dir = mkdtempSync(join(tmpdir(), "kw-cfg-"));
    const file = join(dir, "keyward.yaml");
    writeFileSync(file, "port: 7000\nhost: 0.0.0.0\nlog_level: debug\ntrusted_proxies: [10.0.0.0/8]\n");
    expect(loadConfig({ env: {}, configFile: file }).port).toBe(7000);
    expect(loadConfig({ env: { KEYWARD_PORT: "7001" }, configFile: file }).port).toBe(7001);
    const c = loadConfig({ env: { KEYWARD_PORT: "7001" }, configFile: file, flags: { port: "7002" } });
    expect(c.port).toBe(7002);
    expect(c.host).toBe("0.0.0.0");
    expect(c.trusted_proxies).toEqual(["10.0.0.0/8"]);
    expect(c.config_file).toBe(file);
  });

  it.each([
    [{ env: { KEYWARD_PORT: "x" } }, /^invalid configuration: KEYWARD_PORT: /],
    [{ env: {}, flags: { port: "99999" } }, /^invalid configuration: --port: /],
    [{ env: {}, flags: { nope: "1" } }, /unknown flag --nope/],
    [{ env: { KEYWARD_ISSUER: "ftp://x" } }, /KEYWARD_ISSUER/],
    [{ env: { KEYWARD_LOG_LEVEL: "loud" } }, /KEYWARD_LOG_LEVEL/],
    [{ env: { KEYWARD_AUDIT_FAIL_CLOSED: "maybe" } }, /KEYWARD_AUDIT_FAIL_CLOSED/],
    [{ env: { KEYWARD_TRUSTED_PROXIES: "10.0.0.0/8,nonsense" } }, /KEYWARD_TRUSTED_PROXIES: .*nonsense/],
  ])("names the wrong setting: %j", (sources, message) => {
    expect(() => loadConfig(sources)).toThrow(ConfigError);
    expect(() => loadConfig(sources)).toThrow(message);
  });

  it("rejects unknown settings in the file, naming them", () => {
    const dir = mkdtempSync(join(tmpdir(), "kw-cfg-"));
    const file = join(dir, "k.yaml");
    writeFileSync(file, "prot: 1\n");
    expect(() => loadConfig({ env: {}, configFile: file })).toThrow(/unknown setting prot/);
    writeFileSync(file, "- a list\n");
    expect(() => loadConfig({ env: {}, configFile: file })).toThrow(/mapping/);
    writeFileSync(file, "port: [unclosed\n");
    expect(() => loadConfig({ env: {}, configFile: file })).toThrow(/not valid YAML/);
  });

  it("never echoes a secret setting's value", () => {
    const secret = "too-short-canary";
    try {
      loadConfig({ env: { KEYWARD_ADMIN_TOKEN: secret } });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toContain("KEYWARD_ADMIN_TOKEN");
      expect((err as Error).message).not.toContain(secret);
    }
  });
});

describe("trusted_issuers", () => {
  function withIssuer(entry: Record<string, unknown>) {
    const dir = mkdtempSync(join(tmpdir(), "kw-cfg-"));
    const file = join(dir, "keyward.yaml");
    const base = { issuer: "https://idp.example", audience: "keyward", scopes: ["agent:*"] };
    writeFileSync(file, JSON.stringify({ trusted_issuers: [{ ...base, ...entry }] }));
    return () => loadConfig({ env: {}, configFile: file });
  }

  it("defaults subject_claim to sub and algorithms to RS256 and ES256", () => {
    const [entry] = withIssuer({ jwks_uri: "https://idp.example/jwks" })().trusted_issuers;
    expect(entry).toMatchObject({ subject_claim: "sub", algorithms: ["RS256", "ES256"] });
  });

  it.each([
    "https://idp.example/jwks",
    "http://127.0.0.1:9000/jwks",
    "http://127.1.2.3/jwks",
    "http://localhost:9000/jwks",
    "http://[::1]:9000/jwks",
  ])("accepts jwks_uri %s", (uri) => {
    expect(withIssuer({ jwks_uri: uri })().trusted_issuers[0]?.jwks_uri).toBe(uri);
  });

  it.each([
    "http://idp.example/jwks",
    "http://127.attacker.example/jwks",
    "http://10.0.0.1/jwks",
    "ftp://idp.example/jwks",
  ])("refuses jwks_uri %s at boot with a one-line message", (uri) => {
    const load = withIssuer({ jwks_uri: uri });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/^invalid configuration: trusted_issuers in .*keyward\.yaml: .*(https|http\(s\))/);
    try {
      load();
    } catch (err) {
      expect((err as Error).message).not.toContain("\n");
    }
  });

  it.each([["HS256"], ["none"]])("refuses algorithm %s", (alg) => {
    expect(withIssuer({ jwks_uri: "https://idp.example/jwks", algorithms: [alg] })).toThrow(/trusted_issuers/);
  });
});

describe("trusted_issuers user ids (each issuer its own user_prefix)", () => {
  function withIssuers(...entries: Record<string, unknown>[]) {
    const dir = mkdtempSync(join(tmpdir(), "kw-cfg-"));
    const file = join(dir, "keyward.yaml");
    const base = { audience: "keyward", jwks_uri: "https://idp.example/jwks" };
    writeFileSync(file, JSON.stringify({ trusted_issuers: entries.map((e) => ({ ...base, ...e })) }));
    return () => loadConfig({ env: {}, configFile: file });
  }
  /** Refused at boot with one line naming `setting`. */
  function refusedNaming(load: () => unknown, setting: RegExp) {
    expect(load).toThrow(ConfigError);
    try {
      load();
    } catch (err) {
      const message = (err as Error).message;
      expect(message).toMatch(/^invalid configuration: trusted_issuers in .*keyward\.yaml: /);
      expect(message).toMatch(setting);
      expect(message).not.toContain("\n");
    }
  }
  const okta = { issuer: "https://okta.example" };
  const entra = { issuer: "https://entra.example" };

  it("accepts one prefix per issuer, and one issuer sharing ids with keys", () => {
    const c = withIssuers(
      { ...okta, user_prefix: "okta." },
      { ...entra, user_prefix: "entra." },
      { issuer: "https://legacy.example", share_user_ids_with_keys: true },
    )();
    expect(c.trusted_issuers.map((e) => [e.user_prefix, e.share_user_ids_with_keys])).toEqual([
      ["okta.", false],
      ["entra.", false],
      [undefined, true],
    ]);
  });

  it("keeps a lone issuer without a prefix (today's ids; the server warns at start)", () => {
    expect(withIssuers(okta)().trusted_issuers[0]).toMatchObject({ share_user_ids_with_keys: false });
    expect(withIssuers(okta, { ...okta, audience: "other" })().trusted_issuers).toHaveLength(2);
  });

  it("requires a prefix on every issuer when there are two", () => {
    refusedNaming(withIssuers(okta, entra), /trusted_issuers\[0\]\.user_prefix is required/);
    refusedNaming(withIssuers({ ...okta, user_prefix: "okta." }, entra), /trusted_issuers\[1\]\.user_prefix/);
  });

  it("refuses a prefix two issuers share, or one that begins another", () => {
    refusedNaming(
      withIssuers({ ...okta, user_prefix: "idp." }, { ...entra, user_prefix: "idp." }),
      /trusted_issuers\[1\]\.user_prefix "idp\." clashes with trusted_issuers\[0\]/,
    );
    // `a.` + `b.x` and `a.b.` + `x` would both be a.b.x.
    refusedNaming(
      withIssuers({ ...okta, user_prefix: "a.b." }, { ...entra, user_prefix: "a." }),
      /trusted_issuers\[1\]\.user_prefix/,
    );
  });

  it("lets entries of one issuer share its prefix (same iss, same users)", () => {
    const c = withIssuers({ ...okta, user_prefix: "okta." }, { ...okta, audience: "other", user_prefix: "okta." })();
    expect(c.trusted_issuers).toHaveLength(2);
  });

  it("allows share_user_ids_with_keys on one issuer only, and never with a prefix", () => {
    refusedNaming(
      withIssuers({ ...okta, share_user_ids_with_keys: true }, { ...entra, share_user_ids_with_keys: true }),
      /trusted_issuers\[1\]\.share_user_ids_with_keys: at most one issuer/,
    );
    refusedNaming(
      withIssuers({ ...okta, share_user_ids_with_keys: true, user_prefix: "okta." }),
      /trusted_issuers\[0\]: share_user_ids_with_keys and user_prefix exclude each other/,
    );
    refusedNaming(withIssuers({ ...okta, share_user_ids_with_keys: "yes" }), /./);
  });

  it.each([
    ["empty", ""],
    ["with a colon", "okta:"],
    ["with a slash", "okta/"],
    ["longer than 64", "a".repeat(65)],
  ])("refuses a user_prefix that is %s", (_what, prefix) => {
    refusedNaming(withIssuers({ ...okta, user_prefix: prefix }), /1-64 characters/);
  });

  it("accepts a user_prefix of 64 characters", () => {
    expect(withIssuers({ ...okta, user_prefix: "a".repeat(64) })().trusted_issuers[0]?.user_prefix).toHaveLength(64);
  });
});

describe("mcp", () => {
  function withMcp(mcp: unknown) {
    const dir = mkdtempSync(join(tmpdir(), "kw-cfg-"));
    const file = join(dir, "keyward.yaml");
    writeFileSync(file, JSON.stringify({ mcp }));
    return () => loadConfig({ env: {}, configFile: file });
  }

  it("has no servers by default, and defaults for the pool", () => {
    expect(loadConfig({ env: {} }).mcp).toEqual({
      servers: {},
      max_processes: 100,
      idle_timeout_s: 300,
      start_timeout_ms: 15_000,
      max_calls_per_user: 64,
      tool_timeout_ms: 60_000,
    });
  });

  it("reads stdio and HTTP servers as SPEC §8 writes them", () => {
    const cfg = withMcp({
      servers: {
        cloud: { command: "node", args: ["cloud-tools.js"], env_from_user_credentials: { ALIYUN_AK: "aliyun_ak" } },
        tickets: {
          url: "http://127.0.0.1:9000/mcp",
          headers_from_user_credentials: { Authorization: "Bearer {ticket_token}" },
        },
      },
      max_calls_per_user: 8,
    })();
    expect(cfg.mcp.servers.cloud).toEqual({
      command: "node",
      args: ["cloud-tools.js"],
      env: {},
      env_from_user_credentials: { ALIYUN_AK: "aliyun_ak" },
    });
    expect(cfg.mcp.servers.tickets).toMatchObject({ url: "http://127.0.0.1:9000/mcp" });
    expect(cfg.mcp.max_calls_per_user).toBe(8);
  });

  it.each([
    [{ servers: { "Bad Name": { command: "node" } } }],
    [{ servers: { cloud: { command: "node", env_from_user_credentials: { "1BAD": "x" } } } }],
    [{ servers: { tickets: { url: "ftp://x/mcp" } } }],
    [{ servers: { tickets: { url: "http://x/mcp", headers_from_user_credentials: { "Bad Header": "{x}" } } } }],
    [{ servers: { cloud: { command: "node", unknown: 1 } } }],
    [{ max_processes: 0 }],
  ])("refuses %j at boot with a one-line message naming mcp", (mcp) => {
    const load = withMcp(mcp);
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/^invalid configuration: mcp in [^\n]*$/);
  });
});
