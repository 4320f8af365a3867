import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureCli } from "../../test-support/cli-capture.js";
import { startTestServer, TEST_ADMIN_TOKEN, type TestServer } from "../../test-support/server.js";
import { readJson, type TokenEndpointBody } from "../../test-support/wire.js";

/** `keyward users …` in-process against a real Keyward, as an operator types it. */

let kw: TestServer;

const cli = (argv: string[], stdin?: string) =>
  captureCli(argv, { env: { KEYWARD_URL: kw.url, KEYWARD_ADMIN_TOKEN: TEST_ADMIN_TOKEN }, stdin });

beforeAll(async () => {
  kw = await startTestServer();
});
afterAll(async () => {
  await kw?.close();
});

describe("keyward users credentials", () => {
  it("sets from stdin, lists names and versions, removes; never prints a value", async () => {
    const secret = `AKIA-${randomBytes(8).toString("hex")}`;
    const set = await cli(
      ["users", "credentials", "set", "alice@example.com", "cloud_ak", "--value-stdin"],
      `${secret}\n`,
    );
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toBe("set cloud_ak for user alice@example.com: version 1\n");
    const again = await cli(["users", "credentials", "set", "alice@example.com", "cloud_ak", "--value-stdin"], "v2");
    expect(again.stdout).toContain("version 2");

    const list = await cli(["users", "credentials", "list", "alice@example.com"]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/NAME\s+VERSION\s+UPDATED/);
    expect(list.stdout).toMatch(/cloud_ak\s+2/);
    const json = await cli(["users", "credentials", "list", "alice@example.com", "--json"]);
    expect(JSON.parse(json.stdout).items).toEqual([{ name: "cloud_ak", version: 2, updated_at: expect.any(String) }]);
    for (const r of [set, again, list, json]) expect(r.stdout + r.stderr).not.toContain(secret);
    // What an agent's tool receives is the piped value, without its newline.
    expect((await kw.admin("POST", "/agents", { name: "tools", upstream: "http://127.0.0.1:9" })).status).toBe(201);
    await kw.admin("PUT", "/agents/tools/grants", { credentials: [], user_credentials: ["first"] });
    const agentKey = (await kw.admin("POST", "/keys", { owner: "agent:tools", scopes: [] })).body.secret;
    const userKey = (await kw.admin("POST", "/keys", { owner: "user:alice@example.com", scopes: [] })).body.secret;
    const minted = await readJson<TokenEndpointBody>(
      await fetch(`${kw.url}/v1/auth/token`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ api_key: userKey, audience: "tools" }),
      }),
    );
    expect(
      (await cli(["users", "credentials", "set", "alice@example.com", "first", "--value-stdin"], `${secret}\n`)).code,
    ).toBe(0);
    const fetched = await fetch(`${kw.url}/v1/tools/credentials`, {
      method: "POST",
      headers: { authorization: `Bearer ${agentKey}`, "content-type": "application/json" },
      body: JSON.stringify({ user_token: minted.access_token, names: ["first"] }),
    });
    expect(await fetched.json()).toEqual({ credentials: { first: secret } });

    const rm = await cli(["users", "credentials", "rm", "alice@example.com", "cloud_ak"]);
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout).toBe("deleted credential cloud_ak of user alice@example.com\n");
    expect((await cli(["users", "credentials", "rm", "alice@example.com", "first"])).code).toBe(0);
    expect((await cli(["users", "credentials", "list", "alice@example.com"])).stdout).toBe("no credentials\n");
    const gone = await cli(["users", "credentials", "rm", "alice@example.com", "cloud_ak"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("not_found");
  });

  it("warns about --value, and refuses bad usage with exit 2", async () => {
    const direct = await cli(["users", "credentials", "set", "bob", "k", "--value", "plain"]);
    expect(direct.code).toBe(0);
    expect(direct.stderr).toContain("prefer --value-stdin");
    for (const argv of [
      ["users", "credentials", "set", "bob", "k"],
      ["users", "credentials", "set", "bob"],
      ["users", "credentials", "set", "bob", "k", "--value", "x", "--value-stdin"],
      ["users", "keys", "list", "bob"],
      ["users", "credentials", "show", "bob"],
    ]) {
      const r = await cli(argv, "");
      expect(r.code, `${argv.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/^error: /);
    }
    // A bad id or name is refused before any request (see the dots test for why).
    const bad = await cli(["users", "credentials", "set", "a/b", "k", "--value-stdin"], "v");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("USER");
    const badName = await cli(["users", "credentials", "rm", "bob", ".."]);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain("NAME");
  });

  it("refuses a user id of only dots: fetch would resolve it away and write the shared credential", async () => {
    // `/admin/v1/users/../credentials/x` is `/admin/v1/credentials/x` once a URL is resolved.
    const shared = await kw.admin("PUT", "/credentials/dotted", { value: "shared-value" });
    expect(shared.status).toBe(201);
    for (const user of ["..", ".", "..."]) {
      for (const argv of [
        ["users", "credentials", "set", user, "dotted", "--value-stdin"],
        ["users", "credentials", "rm", user, "dotted"],
        ["users", "credentials", "list", user],
      ]) {
        const r = await cli(argv, "attacker-value");
        expect(r.code, `${argv.join(" ")}: ${r.stdout}${r.stderr}`).toBe(2);
        expect(r.stderr).toContain("USER");
      }
    }
    const after = await kw.admin("GET", "/credentials/dotted");
    expect(after.status).toBe(200);
    expect(after.body.current_version ?? after.body.version).toBe(1);
  });

  it("lists who has credentials: a table, --json, --credential, one page with --limit; never a value", async () => {
    const secret = `LIST-${randomBytes(8).toString("hex")}`;
    for (const [user, name] of [
      ["list-a", "cli_ak"],
      ["list-a", "cli_gh"],
      ["list-b", "cli_gh"],
      ["list-c", "cli_ak"],
    ]) {
      expect((await cli(["users", "credentials", "set", user!, name!, "--value-stdin"], secret)).code).toBe(0);
    }
    const table = await cli(["users", "list"]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^USER\s+CREDENTIALS\s+UPDATED\n/);
    expect(table.stdout).toMatch(/\nlist-a\s+cli_ak,cli_gh\s+\d{4}-\d\d-\d\d /);
    expect(table.stdout).toMatch(/\nlist-b\s+cli_gh\s/);

    const filtered = await cli(["users", "list", "--credential", "cli_gh", "--json"]);
    expect(filtered.code, filtered.stderr).toBe(0);
    const body = JSON.parse(filtered.stdout);
    expect(body.items.map((i: { user: string }) => i.user)).toEqual(["list-a", "list-b"]);
    expect(body.items[1]).toEqual({
      user: "list-b",
      credentials: [{ name: "cli_gh", version: 1, updated_at: expect.any(String) }],
    });

    // Flags before the command word are flags, not the command.
    const page = await cli(["users", "--credential", "cli_ak", "list", "--limit", "1"]);
    expect(page.code, page.stderr).toBe(0);
    expect(page.stdout).toMatch(/\nlist-a\s/);
    expect(page.stdout).not.toContain("list-c");
    expect(page.stderr).toMatch(/more results: add --cursor \S+/);
    const cursor = page.stderr.match(/--cursor (\S+)/)![1]!;
    const next = await cli(["users", "list", "--credential", "cli_ak", "--limit", "1", "--cursor", cursor]);
    expect(next.stdout).toMatch(/\nlist-c\s/);
    expect(next.stderr).toBe("");

    const none = await cli(["users", "list", "--credential", "cli_nobody"]);
    expect(none.stdout).toBe("no users with credentials\n");
    for (const r of [table, filtered, page, next]) expect(r.stdout + r.stderr).not.toContain(secret);
  });

  it("refuses a bad --credential, extra arguments and a bad limit with exit 2", async () => {
    for (const argv of [
      ["users", "list", "--credential", "__proto__"],
      ["users", "list", "--credential", "a/b"],
      ["users", "list", "bob"],
      ["users", "list", "--limit", "0"],
      ["users", "credentials"],
    ]) {
      const r = await cli(argv);
      expect(r.code, `${argv.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/^error: /);
    }
  });

  it("shows usage with --help", async () => {
    const help = await cli(["users", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("keyward users credentials set USER NAME");
    expect(help.stdout).toContain("keyward users credentials list USER");
    expect(help.stdout).toContain("keyward users list [--credential NAME]");
    expect((await cli(["users", "credentials", "--help"])).stdout).toContain("keyward users list");
    const top = await cli(["--help"]);
    expect(top.stdout).toMatch(/users\s+per-user tool credentials/);
  });
});
