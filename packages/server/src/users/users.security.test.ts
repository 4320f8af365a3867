import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Json, type Reply, startUsersFixture, type UsersFixture } from "../../test-support/users/users-fixture.js";
import { frozenClock } from "../clock.js";

/**
 * Attacks on per-user credentials: one user's token never reaches another's values; a user token
 * counts only for the agent it was meant for and only while its keys live; no path reads a value
 * back but `/v1/tools/credentials`; canary values appear nowhere else.
 */

const logs: string[] = [];
const clock = frozenClock(Date.now());
let f: UsersFixture;
let agent: { name: string; key: string };
let other: { name: string; key: string };
const responses: Array<{ where: string; text: string; allowed: boolean }> = [];
const CANARIES = {
  alice: "AKIA-CANARY-alice-7f3e9b1c",
  bob: "AKIA-CANARY-bob-2d8a4e6f",
  self: "ghp_CANARY_self_5c1b9d3a",
};

/** Every reply is kept, so the canary test can search all of them. */
function keep(where: string, r: Reply, allowed = false): Reply {
  responses.push({ where, text: `${r.status}\n${[...r.headers].join("\n")}\n${JSON.stringify(r.body)}`, allowed });
  return r;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString());
      done();
    },
  });
  f = await startUsersFixture({ KEYWARD_LOG_LEVEL: "debug" }, { logger: pino({ level: "debug" }, sink), clock });
  agent = await f.agent(["cloud_ak"]);
  other = await f.agent(["cloud_ak"]);
  keep("admin put alice", { ...(await f.adminPut("alice", "cloud_ak", CANARIES.alice)), headers: new Headers() });
  keep("admin put bob", { ...(await f.adminPut("bob", "cloud_ak", CANARIES.bob)), headers: new Headers() });
});
afterAll(async () => {
  await f?.close();
});

/** A tool fetch; only its successful answers may carry values. */
const fetchFor = async (where: string, caller: string, userToken: string, names = ["cloud_ak"]) => {
  const r = await f.tools(caller, { user_token: userToken, names });
  return keep(where, r, r.status === 200);
};

function expectInvalidToken(r: Reply): void {
  expect(r.status, JSON.stringify(r.body)).toBe(401);
  expect(r.body.error.code).toBe("invalid_token");
}

describe("users are kept apart", () => {
  it("gives bob's token bob's value and never alice's, whatever the body says", async () => {
    const alice = await f.userKey("alice");
    const bob = await f.userKey("bob");
    const aliceJwt = await f.forwarded(alice.secret, agent.name);
    const bobJwt = await f.forwarded(bob.secret, agent.name);
    const forBob = keep("bob", await f.tools(agent.key, { user_token: bobJwt, names: ["cloud_ak"] }), true);
    expect(forBob.body).toEqual({ credentials: { cloud_ak: CANARIES.bob } });
    const forAlice = keep("alice", await f.tools(agent.key, { user_token: aliceJwt, names: ["cloud_ak"] }), true);
    expect(forAlice.body).toEqual({ credentials: { cloud_ak: CANARIES.alice } });
    // A user id planted next to the token is refused, not obeyed.
    for (const extra of [{ user: "alice" }, { sub: "user:alice" }, { user_id: "alice" }]) {
      const planted = keep("planted", await f.tools(agent.key, { user_token: bobJwt, names: ["cloud_ak"], ...extra }));
      expect(planted.status).toBe(400);
    }
  });

  it("refuses a user token meant for another agent", async () => {
    const alice = await f.userKey("alice");
    const forOther = await f.forwarded(alice.secret, other.name);
    expectInvalidToken(await fetchFor("other agent's jwt", agent.key, forOther));
    const minted = await f.token(alice.secret, { audience: other.name });
    expectInvalidToken(await fetchFor("other agent's minted", agent.key, minted));
    // And a token with no agent audience (meant for Keyward itself).
    expectInvalidToken(await fetchFor("issuer audience", agent.key, await f.token(alice.secret)));
  });

  it("refuses a consumer's or an agent's token, keys, and garbage as user_token", async () => {
    expect((await f.kw.admin("POST", "/consumers", { name: "acme" })).status).toBe(201);
    const consumer = await f.kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:*"] });
    const consumerJwt = await f.forwarded(consumer.body.secret, agent.name);
    expectInvalidToken(await fetchFor("consumer jwt", agent.key, consumerJwt));
    expectInvalidToken(
      await fetchFor("consumer minted", agent.key, await f.token(consumer.body.secret, { audience: agent.name })),
    );
    // The agent's own token, and another agent's token forwarded to it.
    expectInvalidToken(await fetchFor("agent token", agent.key, await f.token(agent.key)));
    const otherKey = await f.kw.admin("POST", "/keys", {
      owner: `agent:${other.name}`,
      scopes: [`agent:${agent.name}`],
    });
    expectInvalidToken(await fetchFor("agent jwt", agent.key, await f.forwarded(otherKey.body.secret, agent.name)));
    const alice = await f.userKey("alice");
    for (const garbage of [
      alice.secret,
      agent.key,
      "not-a-token",
      "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyOmFsaWNlIn0.",
    ]) {
      expectInvalidToken(await fetchFor("garbage", agent.key, garbage));
    }
  });

  it("refuses names the agent was not granted, naming the first", async () => {
    const alice = await f.userKey("alice");
    const jwt = await f.forwarded(alice.secret, agent.name);
    const r = await fetchFor("not granted", agent.key, jwt, ["cloud_ak", "cloud_sk"]);
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe("credential_not_granted");
    expect(r.body.error.message).toContain("cloud_sk");
  });
});

describe("a user token lives only as long as its key", () => {
  it("is refused once the user's key is revoked, frozen or past its expiry", async () => {
    for (const action of ["revoke", "freeze", "expire"] as const) {
      const alice = await f.userKey("alice", ["agent:*"], action === "expire" ? { expires_in: 60 } : {});
      const jwt = await f.forwarded(alice.secret, agent.name);
      const minted = await f.token(alice.secret, { audience: agent.name });
      expect((await fetchFor(`before ${action}`, agent.key, jwt)).status).toBe(200);
      if (action === "expire") clock.advance(61_000);
      else expect((await f.kw.admin("POST", `/keys/${alice.id}/${action}`)).status).toBe(200);
      expectInvalidToken(await fetchFor(`after ${action}`, agent.key, jwt));
      expectInvalidToken(await fetchFor(`after ${action}`, agent.key, minted));
    }
  });

  it("is refused once the token itself expired or was revoked", async () => {
    const alice = await f.userKey("alice");
    const minted = await f.token(alice.secret, { audience: agent.name, duration_secs: 5 });
    expect((await fetchFor("fresh", agent.key, minted)).status).toBe(200);
    clock.advance(5_000);
    expectInvalidToken(await fetchFor("expired", agent.key, minted));
    const second = await f.token(alice.secret, { audience: agent.name });
    // RFC 7009 §2.1: the holder authenticates; here by presenting the very token it revokes.
    const revoke = await fetch(`${f.kw.url}/oauth/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Bearer ${second}` },
      body: new URLSearchParams({ token: second }).toString(),
    });
    expect(revoke.status).toBe(200);
    expectInvalidToken(await fetchFor("revoked", agent.key, second));
  });
});

describe("values are write-only for users", () => {
  it("offers a user no path that reads a value back", async () => {
    const carol = await f.userKey("carol", ["agent:*"]);
    const token = await f.token(carol.secret);
    keep("self put", await f.selfPut(carol.secret, "gh", CANARIES.self));
    for (const cred of [carol.secret, token]) {
      const list = keep("self list", await f.selfList(cred));
      expect(list.body.items).toEqual([{ name: "gh", version: 1, updated_at: expect.any(String) }]);
      expect(keep("self get", await f.call("GET", "/v1/users/me/credentials/gh", cred)).status).toBe(405);
      // The tool path is for agents: a user's own key or token is no agent.
      const asTool = keep("self tools", await f.tools(cred, { user_token: token, names: ["gh"] }));
      expect(asTool.status).toBe(403);
      expect(keep("self /v1/credentials", await f.call("GET", "/v1/credentials", cred)).status).toBe(403);
      expect(keep("self egress", await f.call("GET", "/egress/gh/x", cred)).status).toBeGreaterThanOrEqual(400);
    }
    expect(keep("admin get", await f.call("GET", "/admin/v1/users/carol/credentials/gh", f.kw.adminToken)).status).toBe(
      405,
    );
  });

  it("does not let an agent holding a user's forwarded token manage that user's credentials", async () => {
    const dan = await f.userKey("dan");
    const jwt = await f.forwarded(dan.secret, agent.name);
    for (const r of [
      await f.selfPut(jwt, "planted", "x"),
      await f.selfDelete(jwt, "cloud_ak"),
      await f.selfList(jwt),
    ]) {
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe("invalid_token");
    }
    expect((await f.kw.admin("GET", "/users/dan/credentials")).body.items).toEqual([]);
  });

  it("refuses self-service to anyone who is not a user", async () => {
    expect((await f.selfPut(agent.key, "x", "v")).status).toBe(403);
    expect((await f.selfList(agent.key)).status).toBe(403);
    expect((await f.selfPut(f.kw.adminToken, "x", "v")).status).toBe(401);
    expect((await f.call("GET", "/v1/users/me/credentials", undefined)).status).toBe(401);
  });
});

describe("canary values", () => {
  it("are in no response but /v1/tools/credentials, and not in logs, audit, metrics or the data dir", async () => {
    // One more tool call and a tool-call record, so the audit log holds every kind of event.
    const alice = await f.userKey("alice");
    const jwt = await f.forwarded(alice.secret, agent.name);
    keep("last read", await f.tools(agent.key, { user_token: jwt, names: ["cloud_ak"] }), true);
    keep("event", await f.event(agent.key, { tool: "t", user: "user:alice", outcome: "ok", redactions: 1 }));
    // The admin's overview of who has credentials names them, never their values.
    const overview = keep("admin users list", await f.call("GET", "/admin/v1/users", f.kw.adminToken));
    expect(overview.body.items.map((i: Json) => i.user)).toEqual(expect.arrayContaining(["alice", "bob", "carol"]));
    keep("admin users filtered", await f.call("GET", "/admin/v1/users?credential=gh&limit=1", f.kw.adminToken));

    const check = (where: string, text: string) => {
      for (const [who, value] of Object.entries(CANARIES)) {
        expect(text.includes(value), `${who}'s canary found in ${where}`).toBe(false);
      }
    };
    expect(responses.filter((r) => r.allowed).length).toBeGreaterThanOrEqual(3);
    for (const r of responses) if (!r.allowed) check(r.where, r.text);
    expect(logs.length).toBeGreaterThan(0);
    check("logs", logs.join("\n"));
    const audit = await f.kw.admin("GET", "/audit?limit=1000");
    expect(audit.body.events.some((e: Json) => e.action === "user_credential.read")).toBe(true);
    check("audit", JSON.stringify(audit.body));
    check("metrics", await (await fetch(`${f.kw.url}/metrics`)).text());
    check("upstream", JSON.stringify(f.up.seen));
    // Read while the server runs: the SQLite file and its WAL are both on disk.
    for (const file of filesUnder(f.kw.dataDir)) check(file, readFileSync(file).toString("latin1"));
  });
});
