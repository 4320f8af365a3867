import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../packages/server/src/config.js";

/**
 * docs/mcp-clients.md shows operators the config that lets MCP clients sign in: it must be one
 * `keyward serve` accepts, with the settings it says, so the page cannot drift from config.ts.
 */
const ROOT = join(import.meta.dirname, "..");
const doc = readFileSync(join(ROOT, "docs/mcp-clients.md"), "utf8");

describe("docs/mcp-clients.md", () => {
  it("its config file example loads, and says what it means", () => {
    const yaml = doc.match(/```yaml\n(# keyward\.yaml[\s\S]*?)```/)?.[1];
    expect(yaml).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), "kw-doc-"));
    try {
      const file = join(dir, "keyward.yaml");
      writeFileSync(file, yaml as string);
      const config = loadConfig({
        configFile: file,
        env: {
          KEYWARD_ISSUER: "https://keyward.example.com",
          KEYWARD_DATA_DIR: dir,
          KEYWARD_MCP_SIGN_IN_CLIENT_SECRET: "doc-test-client-secret",
        },
      });
      expect(config.mcp_authorization.sign_in).toMatchObject({
        issuer: "https://login.example.com",
        client_id: "keyward-mcp",
        client_secret: "doc-test-client-secret",
        scopes: ["openid", "email"],
      });
      expect(config.mcp_authorization).toMatchObject({
        redirect_hosts: ["claude.ai", "vscode.dev"],
        max_clients: 1000,
        registrations_per_minute: 10,
        max_pending: 10000,
      });
      expect(config.trusted_issuers[0]?.audience).toEqual(["keyward-mcp"]);
      expect(Object.keys(config.mcp.servers).sort()).toEqual(["cloud", "tickets"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("names the metadata path and challenge the server sends", () => {
    expect(doc).toContain("/.well-known/oauth-protected-resource/mcp/<server>");
    expect(doc).toContain('WWW-Authenticate: Bearer realm="keyward", resource_metadata=');
    expect(doc).toContain("/oauth/callback");
  });
});
