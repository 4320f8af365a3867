import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureCli } from "../../test-support/cli-capture.js";
import { startTestServer, TEST_ADMIN_TOKEN, type TestServer } from "../../test-support/server.js";

/** `keyward admin-tokens` in-process against a real Keyward, as an operator types it. */

let kw: TestServer;
const cli = (argv: string[], token = TEST_ADMIN_TOKEN) =>
  captureCli(argv, { env: { KEYWARD_URL: kw.url, KEYWARD_ADMIN_TOKEN: token } });

beforeAll(async () => {
  kw = await startTestServer();
});
afterAll(() => kw?.close());

describe("keyward admin-tokens", () => {
  it("creates (secret shown once), lists in an aligned table, revokes; roles are enforced", async () => {
    const made = await cli(["admin-tokens", "create", "ci-bot", "--role", "viewer"]);
    expect(made.code).toBe(0);
    const secret = /secret \(shown once\): (kwa_\S+)/.exec(made.stdout)?.[1] ?? "";
    expect(secret).toMatch(/^kwa_[A-Za-z0-9]{38}$/);
    const id = /^id\s+(adm_\S+)$/m.exec(made.stdout)?.[1] ?? "";
    expect(made.stdout).toMatch(/^role\s+viewer$/m);

    const list = await cli(["admin-tokens", "list"]);
    expect(list.code).toBe(0);
    expect(list.stdout).not.toContain(secret);
    const lines = list.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID\s+NAME\s+ROLE\s+STATUS\s+CREATED$/);
    const row = lines.find((l) => l.startsWith(id)) ?? "";
    expect(row).toMatch(/ci-bot\s+viewer\s+active/);
    // Aligned: every column starts where its header does.
    expect(row.indexOf("viewer")).toBe(lines[0]?.indexOf("ROLE"));

    // The viewer's own token reads but may not manage admin tokens.
    const refused = await cli(["admin-tokens", "create", "sneaky", "--role", "owner"], secret);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/forbidden/);
    expect((await cli(["consumers", "list"], secret)).code).toBe(0);

    const revoked = await cli(["admin-tokens", "revoke", id]);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain(`revoked admin token ${id}`);
    expect((await cli(["consumers", "list"], secret)).code).toBe(1);

    const last = await cli(["admin-tokens", "revoke", "adm_bootstrap"]);
    expect(last.code).toBe(1);
    expect(last.stderr).toMatch(/last active owner/);
    expect((await cli(["admin-tokens", "create", "x", "--role", "root"])).code).toBe(1);
  });
});
