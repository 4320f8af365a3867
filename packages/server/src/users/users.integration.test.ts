import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Json, startUsersFixture, type UsersFixture } from "../../test-support/users/users-fixture.js";

/**
 * Users and their tool credentials end to end (SPEC §3, §6, §8): the admin API, the self-service
 * API with a user's key and with a user's token, `POST /v1/tools/credentials` with the JWT the
 * gateway forwards and with a minted agent-audience token, and tool-call audit records.
 */

let f: UsersFixture;

beforeAll(async () => {
  f = await startUsersFixture();
});
afterAll(async () => {
  await f?.close();
});

const audit = async (query: string): Promise<Json[]> => (await f.kw.admin("GET", `/audit?${query}`)).body.events;

describe("admin API", () => {
  it("puts (201, then 200 with the next version), lists metadata and deletes (204, then 404)", async () => {
    const first = await f.adminPut("alice@example.com", "cloud_ak", "AKIA-ADMIN-1");
    expect(first.status).toBe(201);
    expect(first.body).toEqual({
      user: "alice@example.com",
      name: "cloud_ak",
      version: 1,
      updated_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    const second = await f.adminPut("alice@example.com", "cloud_ak", "AKIA-ADMIN-2");
    expect(second.status).toBe(200);
    expect(second.body.version).toBe(2);
    // The `user:<id>` form names the same user.
    expect((await f.adminPut("user:alice@example.com", "cloud_sk", "SK-ADMIN")).status).toBe(201);

    const list = await f.kw.admin("GET", "/users/alice@example.com/credentials");
    expect(list.status).toBe(200);
    expect(list.body).toEqual({
      items: [
        { name: "cloud_ak", version: 2, updated_at: expect.any(String) },
        { name: "cloud_sk", version: 1, updated_at: expect.any(String) },
      ],
      next_cursor: null,
    });
    const page = await f.kw.admin("GET", "/users/alice@example.com/credentials?limit=1");
    expect(page.body.items.map((i: Json) => i.name)).toEqual(["cloud_ak"]);
    const rest = await f.kw.admin("GET", `/users/alice@example.com/credentials?cursor=${page.body.next_cursor}`);
    expect(rest.body.items.map((i: Json) => i.name)).toEqual(["cloud_sk"]);
    expect(JSON.stringify([first, second, list, page, rest])).not.toMatch(/AKIA-ADMIN|SK-ADMIN/);

    expect((await f.kw.admin("DELETE", "/users/alice@example.com/credentials/cloud_sk")).status).toBe(204);
    const again = await f.kw.admin("DELETE", "/users/alice@example.com/credentials/cloud_sk");
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe("not_found");
    const after = await f.kw.admin("GET", "/users/alice@example.com/credentials");
    expect(after.body.items.map((i: Json) => i.name)).toEqual(["cloud_ak"]);

    const events = await audit("action=user_credential.update");
    expect(events[0]).toMatchObject({
      actor: "admin:adm_bootstrap",
      action: "user_credential.update",
      target: "user:alice@example.com",
      details: { name: "cloud_ak", version: 2 },
    });
  });

  it("lists nothing for a user who has nothing", async () => {
    const r = await f.kw.admin("GET", "/users/nobody/credentials");
    expect(r).toEqual({ status: 200, body: { items: [], next_cursor: null } });
  });
});

describe("self-service", () => {
  it("lets a user with their own key put, list and delete, never read a value", async () => {
    const k = await f.userKey("sam", []);
    const put = await f.selfPut(k.secret, "gh_token", "ghp-SELF-KEY");
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ user: "sam", name: "gh_token", version: 1 });
    expect((await f.selfPut(k.secret, "gh_token", "ghp-SELF-KEY-2")).body.version).toBe(2);
    const list = await f.selfList(k.secret);
    expect(list.status).toBe(200);
    expect(list.body).toEqual({
      items: [{ name: "gh_token", version: 2, updated_at: expect.any(String) }],
      next_cursor: null,
    });
    // What the user wrote is what an admin sees, and the other way round.
    expect((await f.kw.admin("GET", "/users/sam/credentials")).body.items).toEqual(list.body.items);
    expect((await f.selfDelete(k.secret, "gh_token")).status).toBe(204);
    expect((await f.selfDelete(k.secret, "gh_token")).status).toBe(404);
    expect((await f.selfList(k.secret)).body.items).toEqual([]);
    expect(JSON.stringify([put, list])).not.toContain("ghp-SELF");

    const events = await audit("principal=user:sam");
    expect(events.map((e: Json) => [e.actor, e.action, e.target])).toEqual([
      ["user:sam", "user_credential.delete", "user:sam"],
      ["user:sam", "user_credential.update", "user:sam"],
      ["user:sam", "user_credential.create", "user:sam"],
    ]);
  });

  it("works the same with the user's access token from POST /v1/auth/token", async () => {
    const k = await f.userKey("tina", []);
    const token = await f.token(k.secret);
    expect((await f.selfPut(token, "aws_key", "AKIA-TINA")).status).toBe(201);
    expect((await f.selfList(token)).body.items.map((i: Json) => i.name)).toEqual(["aws_key"]);
    expect((await f.selfDelete(token, "aws_key")).status).toBe(204);
  });
});

describe("POST /v1/tools/credentials", () => {
  it("hands an agent its user's credentials for the JWT the gateway forwarded", async () => {
    const agent = await f.agent(["cloud_ak", "cloud_sk"]);
    const uma = await f.userKey("uma");
    await f.adminPut("uma", "cloud_ak", "AKIA-UMA");
    await f.adminPut("uma", "cloud_sk", "SK-UMA");
    const jwt = await f.forwarded(uma.secret, agent.name);

    const r = await f.tools(agent.key, { user_token: jwt, names: ["cloud_ak", "cloud_sk"] });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.headers.get("cache-control")).toBe("no-store");
    expect(r.body).toEqual({ credentials: { cloud_ak: "AKIA-UMA", cloud_sk: "SK-UMA" } });
    // Only what was asked for.
    expect((await f.tools(agent.key, { user_token: jwt, names: ["cloud_sk"] })).body).toEqual({
      credentials: { cloud_sk: "SK-UMA" },
    });
    // A new value is served at once.
    await f.adminPut("uma", "cloud_sk", "SK-UMA-2");
    expect((await f.tools(agent.key, { user_token: jwt, names: ["cloud_sk"] })).body.credentials.cloud_sk).toBe(
      "SK-UMA-2",
    );
  });

  it("accepts a token minted for the agent's audience, and the agent's own access token as caller", async () => {
    const agent = await f.agent(["api_token"]);
    const vic = await f.userKey("vic", [`agent:${agent.name}`]);
    await f.adminPut("vic", "api_token", "TOKEN-VIC");
    const minted = await f.token(vic.secret, { audience: agent.name });
    const agentToken = await f.token(agent.key);
    const r = await f.tools(agentToken, { user_token: minted, names: ["api_token"] });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.credentials).toEqual({ api_token: "TOKEN-VIC" });
  });

  it("names the first credential not granted (403) and the first the user has not set (404)", async () => {
    const agent = await f.agent(["a", "b"]);
    const wes = await f.userKey("wes");
    await f.adminPut("wes", "a", "A-WES");
    const jwt = await f.forwarded(wes.secret, agent.name);
    const denied = await f.tools(agent.key, { user_token: jwt, names: ["a", "zz", "yy"] });
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe("credential_not_granted");
    expect(denied.body.error.message).toContain("zz");
    expect(denied.body.error.message).not.toContain("yy");
    const missing = await f.tools(agent.key, { user_token: jwt, names: ["a", "b"] });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("credential_not_found");
    expect(missing.body.error.message).toContain("b");
    expect(JSON.stringify([denied.body, missing.body])).not.toContain("A-WES");
  });

  it("audits each read as the agent's, with the user and names, never the values", async () => {
    const agent = await f.agent(["x"]);
    const xia = await f.userKey("xia");
    await f.adminPut("xia", "x", "X-XIA-VALUE");
    const jwt = await f.forwarded(xia.secret, agent.name);
    expect((await f.tools(agent.key, { user_token: jwt, names: ["x"] })).status).toBe(200);
    expect((await f.tools(agent.key, { user_token: jwt, names: ["nope"] })).status).toBe(403);
    // A durable record queued after them: once it is stored, so are the reads before it.
    expect((await f.event(agent.key, { tool: "flush", user: "user:xia", outcome: "ok", redactions: 0 })).status).toBe(
      201,
    );
    const reads = await audit(`action=user_credential.read&principal=agent:${agent.name}`);
    expect(reads.map((e: Json) => [e.outcome, e.target, e.details.names])).toEqual([
      ["denied", "user:xia", ["nope"]],
      ["success", "user:xia", ["x"]],
    ]);
    expect(JSON.stringify(reads)).not.toContain("X-XIA-VALUE");
  });
});

describe("POST /v1/audit/events", () => {
  it("stores a tool-call record with the agent as actor, the user as target, and the outcome", async () => {
    const agent = await f.agent([]);
    const ok = await f.event(agent.key, {
      tool: "list_functions",
      user: "user:yan@example.com",
      outcome: "ok",
      redactions: 3,
      details: { duration_ms: 12, region: "eu-1" },
    });
    expect(ok.status).toBe(201);
    expect(ok.body).toEqual({ recorded: true });
    const agentToken = await f.token(agent.key);
    const failed = await f.event(agentToken, {
      tool: "list_functions",
      user: "user:yan@example.com",
      outcome: "error",
      redactions: 0,
    });
    expect(failed.status).toBe(201);
    const events = await audit(`action=tool.call&principal=agent:${agent.name}`);
    expect(events.map((e: Json) => [e.actor, e.target, e.outcome, e.details.tool, e.details.redactions])).toEqual([
      [`agent:${agent.name}`, "user:yan@example.com", "failure", "list_functions", 0],
      [`agent:${agent.name}`, "user:yan@example.com", "success", "list_functions", 3],
    ]);
    expect(events[1].details.reported).toEqual({ duration_ms: 12, region: "eu-1" });
    expect(events[0].details.via).toBe("token");
  });
});
