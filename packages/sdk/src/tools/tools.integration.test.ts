import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The real server, started in process the way its own tests start it (test-only imports: the SDK
// itself does not depend on the server).
import { startTestServer, type TestServer } from "../../../server/test-support/server.js";
import { startUpstream } from "../../../server/test-support/upstream.js";
import { Keyward } from "../client/keyward.js";
import { DEFAULT_MARKER as M } from "../redaction/index.js";
import { UserCredentialError } from "./errors.js";

const ALICE_AK = "canary-int-alice-Vb7Nq2Xm9Kp4Rt";
const BOB_AK = "canary-int-bob-Lw3Hs8Yd1Fj6Gz";

let server: TestServer;
let up: Awaited<ReturnType<typeof startUpstream>>;
let kw: Keyward;
let agent: string;
const fingerprint = (v: string) => createHash("sha256").update(v).digest("hex");

async function admin(method: string, path: string, body?: unknown) {
  const res = await server.admin(method, path, body);
  if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A user's key, and the JWT the gateway forwards to the agent for a call made with it. */
async function forwardedToken(user: string, to = agent): Promise<string> {
  const key = await admin("POST", "/keys", { owner: `user:${user}`, scopes: [`agent:${to}`] });
  const before = up.seen.length;
  const res = await fetch(`${server.url}/agents/${to}/echo`, { headers: { authorization: `Bearer ${key.secret}` } });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
  return String(up.seen[before]?.headers.authorization).slice("Bearer ".length);
}

beforeAll(async () => {
  up = await startUpstream();
  server = await startTestServer();
  agent = "cloud-agent";
  await admin("POST", "/agents", { name: agent, upstream: up.url });
  await admin("POST", "/agents", { name: "other-agent", upstream: up.url });
  const key = await admin("POST", "/keys", { owner: `agent:${agent}`, scopes: [] });
  await admin("PUT", `/agents/${agent}/grants`, { credentials: [], user_credentials: ["cloud_ak", "cloud_sk"] });
  await admin("PUT", "/users/alice/credentials/cloud_ak", { value: ALICE_AK });
  await admin("PUT", "/users/bob/credentials/cloud_ak", { value: BOB_AK });
  kw = await Keyward.connect({ url: server.url, token: key.secret });
});
afterAll(async () => {
  await kw?.close();
  await server?.close();
  await up?.close();
});

describe("kw.tools against the real server", () => {
  it("two users run the same CLI tool: each gets their own credential's effect, none of its value, and an audit record", async () => {
    const tool = kw.tools.withUserCredentials(
      async (_args: object, ctx) => {
        const script =
          "const v = process.env.CLOUD_AK; console.log(v); console.log(require('crypto').createHash('sha256').update(v).digest('hex'))";
        const { stdout } = await ctx.run(process.execPath, ["-e", script]);
        const [printed, fp] = stdout.trim().split("\n");
        return { user: ctx.user, printed, fp };
      },
      { names: ["cloud_ak"], inject: "env", name: "list_functions" },
    );
    const [alice, bob] = [await forwardedToken("alice"), await forwardedToken("bob")];
    const [ra, rb] = await Promise.all([tool({}, { userToken: alice }), tool({}, { userToken: bob })]);
    expect(ra).toEqual({ user: "user:alice", printed: M, fp: fingerprint(ALICE_AK) });
    expect(rb).toEqual({ user: "user:bob", printed: M, fp: fingerprint(BOB_AK) });

    await kw.tools.flush();
    const { events } = await admin("GET", "/audit?action=tool.call");
    const mine = events.filter((e: { details?: { tool?: string } }) => e.details?.tool === "list_functions");
    expect(mine).toHaveLength(2);
    for (const user of ["alice", "bob"]) {
      expect(mine).toContainEqual(
        expect.objectContaining({
          actor: `agent:${agent}`,
          target: `user:${user}`,
          outcome: "success",
          details: expect.objectContaining({ tool: "list_functions", redactions: 1 }),
        }),
      );
    }
    const all = JSON.stringify(await admin("GET", "/audit?limit=500"));
    for (const canary of [ALICE_AK, BOB_AK, alice, bob]) expect(all).not.toContain(canary);
  });

  it("refusals arrive with the server's codes, naming the credential, never the values", async () => {
    const tool = kw.tools.withUserCredentials(async () => "ran", {
      names: ["cloud_ak", "cloud_sk"],
      inject: "params",
      name: "two",
    });
    const alice = await forwardedToken("alice");
    const missing = await tool({}, { userToken: alice }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(UserCredentialError);
    expect(missing).toMatchObject({ code: "credential_not_found", status: 404 });
    expect((missing as Error).message).toContain("cloud_sk");

    const ungranted = kw.tools.withUserCredentials(async () => "ran", {
      names: ["cloud_ak", "gh_token"],
      inject: "params",
      name: "three",
    });
    await expect(ungranted({}, { userToken: alice })).rejects.toMatchObject({
      code: "credential_not_granted",
      status: 403,
    });

    // A token the gateway forwarded to another agent is not this agent's to use.
    const elsewhere = await forwardedToken("alice", "other-agent");
    const one = kw.tools.withUserCredentials(async () => "ran", { names: ["cloud_ak"], inject: "params", name: "one" });
    await expect(one({}, { userToken: elsewhere })).rejects.toMatchObject({ code: "invalid_token", status: 401 });
    await expect(one({}, { userToken: `${alice.slice(0, -4)}AAAA` })).rejects.toMatchObject({ code: "invalid_token" });
  });

  it("a failing tool is audited as a failure with its redaction count", async () => {
    const tool = kw.tools.withUserCredentials(
      async (args: { credentials: Record<string, string> }) => {
        throw new Error(`cloud refused ${args.credentials.cloud_ak}`);
      },
      { names: ["cloud_ak"], inject: "params", name: "failing_tool" },
    );
    await expect(tool({}, { userToken: await forwardedToken("bob") })).rejects.toThrow(`cloud refused ${M}`);
    await kw.tools.flush();
    const { events } = await admin("GET", "/audit?action=tool.call");
    expect(events).toContainEqual(
      expect.objectContaining({
        target: "user:bob",
        outcome: "failure",
        details: expect.objectContaining({ tool: "failing_tool", redactions: expect.any(Number) }),
      }),
    );
  });
});
