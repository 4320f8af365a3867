import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureCli } from "../../test-support/cli-capture.js";
import { TEST_ADMIN_TOKEN, type TestServer } from "../../test-support/server.js";
import { startTestServerAt } from "../../test-support/server-at.js";
import { type CredentialsBody, readJson } from "../../test-support/wire.js";
import { ConfigError, loadConfig } from "../config.js";

/** `keyward credentials|grants|master-key` in-process against a real Keyward, as an operator types them. */

let kw: TestServer;
let dataDir: string;
let agentKey: string;
const OLD_KEY = randomBytes(32).toString("base64");
const NEW_KEY = randomBytes(32).toString("base64");

const cli = (argv: string[], stdin?: string) =>
  captureCli(argv, { env: { KEYWARD_URL: kw.url, KEYWARD_ADMIN_TOKEN: TEST_ADMIN_TOKEN }, stdin });

const served = async () =>
  (
    await readJson<CredentialsBody>(
      await fetch(`${kw.url}/v1/credentials`, { headers: { authorization: `Bearer ${agentKey}` } }),
    )
  ).credentials;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "keyward-cli-cred-"));
  kw = await startTestServerAt(dataDir, { KEYWARD_MASTER_KEY: OLD_KEY });
  await kw.admin("POST", "/agents", { name: "bot", upstream: "http://127.0.0.1:9" });
  await kw.admin("POST", "/agents", { name: "peer", upstream: "http://127.0.0.1:9" });
  agentKey = (await kw.admin("POST", "/keys", { owner: "agent:bot", scopes: [] })).body.secret;
});
afterAll(async () => {
  await kw?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("keyward credentials", () => {
  it("sets a value from stdin (one trailing newline dropped), never printing it", async () => {
    const r = await cli(
      ["credentials", "set", "openai", "--value-stdin", "--egress-base-url", "https://api.openai.com/v1"],
      "sk-from-stdin\n",
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/name\s+openai/);
    expect(r.stdout).toMatch(/version\s+1/);
    expect(r.stdout).toContain("https://api.openai.com/v1 (Authorization: Bearer {value})");
    expect(r.stdout).not.toContain("sk-from-stdin");
    expect((await cli(["grants", "set", "bot", "--read", "openai"])).code).toBe(0);
    expect((await served()).openai).toEqual({ value: "sk-from-stdin", version: 1 });
  });

  it("warns that --value lands in shell history, and refuses both at once or an empty stdin", async () => {
    const r = await cli(["credentials", "set", "openai", "--value", "sk-flag"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: --value leaves the secret in your shell history/);
    expect(r.stdout).not.toContain("sk-flag");
    const both = await cli(["credentials", "set", "openai", "--value", "a", "--value-stdin"], "b");
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/cannot be combined/);
    const empty = await cli(["credentials", "set", "openai", "--value-stdin"], "\n");
    expect(empty.code).toBe(2);
    expect((await served()).openai?.version).toBe(2);
  });

  it("lists, shows versions, rolls back and removes", async () => {
    const list = await cli(["credentials", "list"]);
    expect(list.stdout).toMatch(/^NAME\s+TYPE\s+VERSION\s+STATUS\s+EGRESS\s+UPDATED$/m);
    expect(list.stdout).toMatch(/openai\s+static\s+2\s+ok\s+https:\/\/api\.openai\.com\/v1/);
    const get = await cli(["credentials", "get", "openai"]);
    expect(get.stdout).toMatch(/^2\s+set\s/m);
    expect(get.stdout).toMatch(/^1\s+set\s/m);
    const back = await cli(["credentials", "rollback", "openai", "--version", "1"]);
    expect(back.stdout).toBe("rolled back: version 3 has the value of version 1\n");
    expect((await served()).openai).toEqual({ value: "sk-from-stdin", version: 3 });
    const json = JSON.parse((await cli(["credentials", "get", "openai", "--json"])).stdout);
    expect(json.versions[0]).toMatchObject({ version: 3, source: "rollback", rolled_back_from: 1 });

    expect((await cli(["credentials", "set", "temp", "--value-stdin"], "t")).code).toBe(0);
    const rm = await cli(["credentials", "rm", "temp"]);
    expect(rm.stdout).toMatch(/deleted credential temp/);
    const missing = await cli(["credentials", "get", "temp"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/not_found/);
  });

  it("configures a token provider with its client secret from stdin", async () => {
    const r = await cli(
      [
        "credentials",
        "set",
        "azure",
        "--type",
        "oauth2_client_credentials",
        "--token-url",
        "http://127.0.0.1:9/token",
        "--client-id",
        "app",
        "--client-secret-stdin",
        "--json",
      ],
      "client-secret-value\n",
    );
    expect(r.code, r.stderr).toBe(0);
    const body = JSON.parse(r.stdout);
    expect(body).toMatchObject({ type: "oauth2_client_credentials", provider: { client_id: "app" }, status: "error" });
    expect(r.stdout).not.toContain("client-secret-value");
    const wrong = await cli(["credentials", "set", "x", "--token-url", "https://l/t"]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/--token-url needs --type oauth2_client_credentials/);
    await cli(["credentials", "rm", "azure"]);
  });
});

describe("keyward grants", () => {
  it("replaces an agent's grants from flags and shows them", async () => {
    await cli(["credentials", "set", "db", "--value-stdin"], "db-pass");
    const r = await cli([
      "grants",
      "set",
      "bot",
      "--read",
      "openai",
      "--inject",
      "db",
      "--may-call",
      "peer",
      "--user-credentials",
      "github,jira",
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/read\s+openai/);
    expect(r.stdout).toMatch(/inject\s+db/);
    expect(r.stdout).toMatch(/may call\s+peer/);
    expect(r.stdout).toMatch(/user credentials\s+github,jira/);
    expect((await cli(["grants", "get", "bot"])).stdout).toBe(r.stdout);
  });

  it("refuses a set without flags (it would remove every grant) unless --clear says so", async () => {
    const none = await cli(["grants", "set", "peer"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--clear/);
    const both = await cli(["grants", "set", "peer", "--read", "db", "--inject", "db"]);
    expect(both.code).toBe(2);
    const cleared = await cli(["grants", "set", "peer", "--clear", "--json"]);
    expect(JSON.parse(cleared.stdout)).toEqual({ agent: "peer", credentials: [], user_credentials: [], may_call: [] });
  });
});

describe("keyward master-key", () => {
  it("rotates online: new key active, old one retired, re-wrap, then the old key can go", async () => {
    await kw.close();
    kw = await startTestServerAt(dataDir, { KEYWARD_MASTER_KEY: NEW_KEY, KEYWARD_MASTER_KEY_PREVIOUS: OLD_KEY });
    expect((await served()).openai?.value).toBe("sk-from-stdin"); // still opens under the retired key

    const status = await cli(["master-key", "status"]);
    expect(status.stdout).toMatch(/^MASTER KEY ID\s+STATE\s+SEALED VALUES$/m);
    expect(status.stdout).toMatch(/\s+active\s+0$/m);
    expect(status.stdout).toMatch(/retired \(loaded\)\s+\d+$/m);

    const rotate = await cli(["master-key", "rotate"]);
    expect(rotate.code, rotate.stderr).toBe(0);
    expect(rotate.stdout).toMatch(/rewrapped \d+ data keys under [0-9a-f]{16} \(0 already were\)/);
    expect(rotate.stdout).toMatch(/done: no value needs a retired master key/);
    const again = await cli(["master-key", "rotate", "--json"]);
    expect(JSON.parse(again.stdout)).toMatchObject({ rewrapped: 0, remaining: 0, failed: [] });

    await kw.close();
    kw = await startTestServerAt(dataDir, { KEYWARD_MASTER_KEY: NEW_KEY });
    expect((await served()).openai).toEqual({ value: "sk-from-stdin", version: 3 });
    const audit = await kw.admin("GET", "/audit?action=master_key.rewrap");
    expect(audit.body.events).toHaveLength(2);
  });

  it("refuses a malformed KEYWARD_MASTER_KEY_PREVIOUS by naming it, never its value", () => {
    const bad = "not*base64*at*all";
    expect(() => loadConfig({ env: { KEYWARD_MASTER_KEY_PREVIOUS: `${NEW_KEY},${bad}` } })).toThrow(ConfigError);
    try {
      loadConfig({ env: { KEYWARD_MASTER_KEY_PREVIOUS: `${NEW_KEY},${bad}` } });
    } catch (err) {
      expect((err as Error).message).toBe(
        "invalid configuration: KEYWARD_MASTER_KEY_PREVIOUS: key 2 is not valid base64: expected base64 of 32 bytes",
      );
      expect((err as Error).message).not.toContain(NEW_KEY);
    }
    const short = Buffer.alloc(16).toString("base64");
    expect(() => loadConfig({ env: { KEYWARD_MASTER_KEY_PREVIOUS: short } })).toThrow(
      /key 1 must be base64 of exactly 32 bytes/,
    );
  });
});
