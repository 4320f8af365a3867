import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../config.js";

const IDP = "https://login.example.com";
const trusted = [
  { issuer: IDP, jwks_uri: `${IDP}/jwks`, audience: ["keyward"], user_prefix: "corp.", scopes: ["mcp:*"] },
];

function load(config: Record<string, unknown>, env: Record<string, string> = {}) {
  const file = join(mkdtempSync(join(tmpdir(), "kw-mcpauth-")), "keyward.json");
  writeFileSync(file, JSON.stringify(config));
  return loadConfig({ env, configFile: file });
}

describe("mcp_authorization", () => {
  it("defaults: no sign-in, loopback redirects only, 1000 registrations, 10 a minute per address", () => {
    const c = loadConfig({ env: {} }).mcp_authorization;
    expect(c).toEqual({ redirect_hosts: [], max_clients: 1000, registrations_per_minute: 10, max_pending: 10_000 });
  });

  it("takes a sign-in issuer that is a trusted issuer, and its client secret from the environment", () => {
    const c = load(
      {
        trusted_issuers: trusted,
        mcp_authorization: { sign_in: { issuer: IDP, client_id: "keyward" }, redirect_hosts: ["App.Example.com"] },
      },
      { KEYWARD_MCP_SIGN_IN_CLIENT_SECRET: "s3cret-value" },
    ).mcp_authorization;
    expect(c.sign_in).toEqual({ issuer: IDP, client_id: "keyward", client_secret: "s3cret-value", scopes: ["openid"] });
    expect(c.redirect_hosts).toEqual(["app.example.com"]);
  });

  it.each([
    [
      { sign_in: { issuer: "https://other.example.com", client_id: "keyward" } },
      /must equal the issuer of a trusted_issuers entry/,
    ],
    [{ sign_in: { issuer: IDP, client_id: "not-in-audience" } }, /must be among that trusted_issuers entry's audience/],
    [{ sign_in: { issuer: "http://login.example.com", client_id: "keyward" } }, /sign_in.issuer must be https/],
    [{ sign_in: { issuer: IDP, client_id: "keyward", scopes: ["email"] } }, /must include openid/],
    [{ redirect_hosts: ["https://app.example.com"] }, /a host name, without scheme/],
    [{ max_clients: 0 }, /mcp_authorization/],
    [{ sign_in: { issuer: IDP, client_id: "keyward" }, extra: 1 }, /unknown setting|Unrecognized key/],
  ])("refuses %j at boot, naming the setting", (section, message) => {
    const attempt = () => load({ trusted_issuers: trusted, mcp_authorization: section });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(message);
    expect(attempt).toThrow(/mcp_authorization/);
  });

  it("never echoes the sign-in secret in an error", () => {
    const attempt = () =>
      load(
        { trusted_issuers: trusted, mcp_authorization: { sign_in: { issuer: IDP, client_id: 7 } } },
        { KEYWARD_MCP_SIGN_IN_CLIENT_SECRET: "s3cret-value" },
      );
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (err) {
      expect((err as Error).message).not.toContain("s3cret-value");
    }
  });
});
