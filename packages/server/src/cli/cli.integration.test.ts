import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer } from "../../test-support/server.js";
import { runCli } from "./main.js";

// The CLI in-process against a real Keyward (SQLite, free port): what an operator would type.
let server: Awaited<ReturnType<typeof startTestServer>>;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.close();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(argv: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: { KEYWARD_URL: server.url, KEYWARD_ADMIN_TOKEN: server.adminToken, ...env },
  });
  // Whatever the command and however it ends, the admin token is never shown.
  expect(stdout).not.toContain(server.adminToken);
  expect(stderr).not.toContain(server.adminToken);
  return { code, stdout, stderr };
}

/** Runs a command that must succeed with --json and answers the parsed response. */
async function cliJson<T>(argv: string[]): Promise<T> {
  const r = await cli([...argv, "--json"]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as T;
}

interface KeyJson {
  id: string;
  status: string;
  scopes: string[];
  rate_limit: { limit: number; window_s: number } | null;
  quota: { limit: number; period: string } | null;
}

describe("keyward agents", () => {
  it("creates, lists, gets, updates and deletes an agent", async () => {
    const created = await cli([
      "agents",
      "create",
      "billing",
      "--upstream",
      "http://127.0.0.1:9/v1",
      "--description",
      "Bills",
    ]);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^name\s+billing$/m);
    expect(created.stdout).toMatch(/^upstream\s+http:\/\/127\.0\.0\.1:9\/v1$/m);

    const listed = await cli(["agents", "list"]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^NAME\s+UPSTREAM\s+DESCRIPTION\s+CREATED$/m);
    expect(listed.stdout).toMatch(/^billing\s+http:\/\/127\.0\.0\.1:9\/v1\s+Bills\s+\d{4}-\d\d-\d\d \d\d:\d\d$/m);

    const page = await cliJson<{ items: { name: string }[]; next_cursor: string | null }>(["agents", "list"]);
    expect(page.items.map((a) => a.name)).toContain("billing");

    const got = await cliJson<{ name: string; upstream: string; description: string | null }>([
      "agents",
      "get",
      "billing",
    ]);
    expect(got).toMatchObject({ name: "billing", upstream: "http://127.0.0.1:9/v1", description: "Bills" });

    const updated = await cliJson<{ upstream: string }>([
      "agents",
      "update",
      "billing",
      "--upstream",
      "http://127.0.0.1:9/v2",
    ]);
    expect(updated.upstream).toBe("http://127.0.0.1:9/v2");

    const deleted = await cli(["agents", "delete", "billing"]);
    expect(deleted).toMatchObject({ code: 0, stdout: "deleted agent billing\n" });

    const gone = await cli(["agents", "get", "billing"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^error: not_found: /);
  });

  it("reports a duplicate name as the server's conflict", async () => {
    expect((await cli(["agents", "create", "dup", "--upstream", "http://127.0.0.1:9"])).code).toBe(0);
    const again = await cli(["agents", "create", "dup", "--upstream", "http://127.0.0.1:9"]);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe("");
    expect(again.stderr).toMatch(/^error: conflict: .+\n$/);
  });
});

describe("keyward consumers and keys", () => {
  let keyId = "";
  let firstSecret = "";

  it("creates a consumer with metadata", async () => {
    const consumer = await cliJson<{ name: string; metadata: unknown }>([
      "consumers",
      "create",
      "acme",
      "--metadata",
      '{"team":"ml"}',
    ]);
    expect(consumer).toMatchObject({ name: "acme", metadata: { team: "ml" } });
  });

  it("creates a key and shows its secret exactly once, labelled", async () => {
    expect((await cli(["agents", "create", "search", "--upstream", "http://127.0.0.1:9"])).code).toBe(0);
    const r = await cli([
      "keys",
      "create",
      "--owner",
      "consumer:acme",
      "--scopes",
      "agent:search",
      "--name",
      "ci",
      "--rate-limit",
      "100/60s",
      "--quota",
      "10000/day",
      "--ip-allow",
      "10.0.0.0/8,192.168.1.5/32",
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const secret = /^secret \(shown once\): (kwk_[0-9A-Za-z]+)$/m.exec(r.stdout)?.[1];
    expect(secret).toMatch(/^kwk_[0-9A-Za-z]{38}$/);
    expect(r.stdout.split(secret!)).toHaveLength(2);
    expect(r.stdout).toMatch(/^rate limit\s+100\/60s$/m);
    expect(r.stdout).toMatch(/^quota\s+10000\/day$/m);
    firstSecret = secret!;
    keyId = /^id\s+(\S+)$/m.exec(r.stdout)?.[1] ?? "";
    expect(keyId).not.toBe("");

    // Reads never return the secret again.
    const got = await cli(["keys", "get", keyId]);
    expect(got.code).toBe(0);
    expect(got.stdout).not.toContain(secret!);
    expect(got.stdout).toMatch(/^status\s+active$/m);
  });

  it("includes the secret in --json output, since it is the response", async () => {
    const issued = await cliJson<{ key: KeyJson; secret: string }>([
      "keys",
      "create",
      "--owner",
      "consumer:acme",
      "--scopes",
      "agent:search",
    ]);
    expect(issued.secret).toMatch(/^kwk_/);
    expect(issued.key.scopes).toEqual(["agent:search"]);
  });

  it("lists keys by owner as JSON", async () => {
    const page = await cliJson<{ items: KeyJson[]; next_cursor: string | null }>([
      "keys",
      "list",
      "--owner",
      "consumer:acme",
    ]);
    expect(page.items.map((k) => k.id)).toContain(keyId);
    expect(JSON.stringify(page)).not.toContain(firstSecret);
    const table = await cli(["keys", "list", "--owner", "consumer:acme"]);
    expect(table.stdout).toMatch(/^ID\s+PREFIX\s+OWNER\s+NAME\s+SCOPES\s+STATUS\s+EXPIRES\s+LAST USED$/m);
  });

  it("updates and clears limits", async () => {
    const key = await cliJson<KeyJson>(["keys", "update", keyId, "--no-rate-limit", "--quota", "5/month"]);
    expect(key.rate_limit).toBeNull();
    expect(key.quota).toEqual({ limit: 5, period: "month" });
  });

  it("freezes and unfreezes a key", async () => {
    expect((await cliJson<KeyJson>(["keys", "freeze", keyId])).status).toBe("frozen");
    expect((await cliJson<KeyJson>(["keys", "unfreeze", keyId])).status).toBe("active");
  });

  it("rotates a key with a grace period and shows the new secret once", async () => {
    const human = await cli(["keys", "rotate", keyId, "--grace", "60"]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^secret \(shown once\): kwk_[0-9A-Za-z]{38}$/m);
    expect(human.stdout).toContain(`previous key ${keyId}`);
    const newId = /^id\s+(\S+)$/m.exec(human.stdout)?.[1];
    expect(newId).toBeDefined();
    expect(newId).not.toBe(keyId);

    const issued = await cliJson<{ key: KeyJson; secret: string; previous: KeyJson }>([
      "keys",
      "rotate",
      newId!,
      "--grace",
      "0",
    ]);
    expect(issued.secret).toMatch(/^kwk_/);
    expect(issued.previous.id).toBe(newId);
    expect(issued.key.id).not.toBe(newId);
  });

  it("revokes a key", async () => {
    const r = await cli(["keys", "revoke", keyId]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^status\s+revoked$/m);
  });
});

describe("keyward audit", () => {
  it("lists recent events as a table and as JSON, filtered, and verifies the chain", async () => {
    expect((await cli(["agents", "create", "audited", "--upstream", "http://127.0.0.1:9"])).code).toBe(0);
    const table = await cli(["audit", "list", "--action", "agent.create", "--limit", "5"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^SEQ\s+TIME\s+ACTOR\s+ACTION/);
    expect(table.stdout).toContain("agent:audited");
    const json = await cliJson<{ events: Array<{ action: string; target?: string }> }>([
      "audit",
      "list",
      "--principal",
      "agent:audited",
    ]);
    expect(json.events.map((e) => e.action)).toEqual(["agent.create"]);
    const verify = await cli(["audit", "verify"]);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/^chain intact: \d+ events/);
    const bad = await cli(["audit", "list", "--since", "yesterday"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("error: invalid_request");
  });
});

describe("keyward errors", () => {
  it("reports a wrong token as unauthorized", async () => {
    const r = await cli(["agents", "list"], { KEYWARD_ADMIN_TOKEN: "wrong-token-wrong-token-wrong-token-1234" });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^error: unauthorized: .*\n$/);
    expect(r.stderr).not.toContain("wrong-token");
  });

  it("takes --url and --token over the environment", async () => {
    const r = await cli(["agents", "list", "--url", server.url, "--token", server.adminToken], {
      KEYWARD_URL: "http://127.0.0.1:9",
      KEYWARD_ADMIN_TOKEN: undefined,
    });
    expect(r.code).toBe(0);
  });

  it("reports an unreachable server", async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const r = await cli(["agents", "list"], { KEYWARD_URL: url });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`error: cannot reach Keyward at ${url} (ECONNREFUSED)\n`);
  });
});

/** A port that was free a moment ago and is closed now: connecting to it is refused. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

describe("keyward signing-keys", () => {
  it("lists the keys and rotates: the old key stays listed as retired", async () => {
    const before = await cliJson<{ active_kid: string; keys: Array<{ kid: string }> }>(["signing-keys", "list"]);
    const r = await cli(["signing-keys", "rotate"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/stays in JWKS/);
    const after = await cliJson<{ active_kid: string; keys: Array<{ kid: string; active: boolean }> }>([
      "signing-keys",
      "list",
    ]);
    expect(after.active_kid).not.toBe(before.active_kid);
    expect(after.keys.find((k) => k.kid === before.active_kid)?.active).toBe(false);
    const table = await cli(["signing-keys", "list"]);
    expect(table.stdout).toContain("retired");
  });
});

describe("keyward keys create without scopes", () => {
  it("creates a key with no scopes, as an agent's own key needs none", async () => {
    await cliJson(["agents", "create", "scopeless", "--upstream", "http://127.0.0.1:9/"]);
    const issued = await cliJson<{ key: { scopes: string[]; owner: string }; secret: string }>([
      "keys",
      "create",
      "--owner",
      "agent:scopeless",
    ]);
    expect(issued.key).toMatchObject({ owner: "agent:scopeless", scopes: [] });
    expect(issued.secret).toMatch(/^kwk_/);
  });
});
