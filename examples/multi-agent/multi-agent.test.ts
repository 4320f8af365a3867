import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { ExchangeError, exchangeToken } from "@keyward/sdk";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../packages/server/test-support/server.js";
import { type ApiErrorBody, readJson } from "../../packages/server/test-support/wire.js";
import { startExample } from "./start.mjs";

interface Seen {
  agent: string;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

let kw: TestServer;
let example: Awaited<ReturnType<typeof startExample>>;
/** Every request any of the three agents received, as it arrived. */
const seen: Seen[] = [];

beforeAll(async () => {
  kw = await startTestServer();
  example = await startExample({
    keywardUrl: kw.url,
    adminToken: kw.adminToken,
    consumer: "acme",
    onRequest: (agent: string, req: IncomingMessage) =>
      seen.push({ agent, method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers } }),
  });
});
afterAll(async () => {
  await example?.close();
  await kw?.close();
});

async function callerKey(scopes: string[]): Promise<{ id: string; secret: string }> {
  const r = await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes });
  expect(r.status).toBe(201);
  return { id: r.body.key.id, secret: r.body.secret };
}

/** What a user does: call the workflow through the gateway with their key, and read the answer. */
async function runWorkflow(secret: string, question = "how does token exchange delegate between agents?") {
  const from = seen.length;
  const res = await fetch(`${kw.url}/agents/workflow/run`, {
    method: "POST",
    headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
    body: JSON.stringify({ question }),
  });
  // biome-ignore lint/suspicious/noExplicitAny: each test asserts the shape it needs
  const body: any = await res.json();
  return { status: res.status, body, seen: seen.slice(from) };
}

function bearerOf(s: Seen): string {
  const value = s.headers.authorization ?? "";
  expect(value).toMatch(/^Bearer ey/);
  return value.slice("Bearer ".length);
}

describe("multi-agent example: workflow → research (fetch) and tools (RemoteRunnable) through Keyward", () => {
  it("answers with both agents' results, each acting for the caller with the workflow as actor", async () => {
    const r = await runWorkflow(example.callerKey.secret);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ caller: "consumer:acme", complete: true });
    expect(r.body.answer).toMatch(
      /^On "how does token exchange delegate between agents\?", research found \d+ sources?: RFC 8693/,
    );
    expect(r.body.answer).toMatch(/Key terms: .*token/);

    expect(r.body.research.result.findings[0]).toMatchObject({ id: "rfc8693" });
    // Each downstream token is bound to its agent and down-scoped to it.
    expect(r.body.research.result.acted_for).toMatchObject({
      sub: "consumer:acme",
      act: { sub: "agent:workflow", client_id: example.workflowKey.id },
      scope: "agent:research",
    });
    expect(r.body.research.result.acted_for.act.act).toBeUndefined();
    expect(r.body.tools.result).toMatchObject({
      acted_for: { sub: "consumer:acme", act: { sub: "agent:workflow" }, scope: "agent:tools" },
    });
    expect(r.body.tools.result.keywords).toContain("token");

    expect(r.seen.map((s) => `${s.agent} ${s.method} ${s.url}`)).toEqual([
      "workflow POST /run",
      "research POST /search",
      "tools POST /invoke",
    ]);
    const [w, rs, t] = r.seen.map((s) => decodeJwt(bearerOf(s)));
    expect(w).toMatchObject({ aud: "workflow", sub: "consumer:acme", client_id: example.callerKey.id });
    expect(w?.act).toBeUndefined();
    expect(rs).toMatchObject({ aud: "research", sub: "consumer:acme", act: { sub: "agent:workflow" } });
    expect(t).toMatchObject({ aud: "tools", sub: "consumer:acme", act: { sub: "agent:workflow" } });
  });

  it("never lets the caller's key or the workflow's own key reach an agent", async () => {
    const r = await runWorkflow(example.callerKey.secret);
    expect(r.status).toBe(200);
    expect(r.seen).toHaveLength(3);
    for (const s of r.seen) {
      const headers = JSON.stringify(s.headers);
      expect(headers).not.toContain(example.callerKey.secret);
      expect(headers).not.toContain(example.workflowKey.secret);
      expect(headers).not.toMatch(/kw[kr]_/);
    }
  });

  it("reports a caller without agent:tools as a refused tools leg, and still answers with research", async () => {
    const key = await callerKey(["agent:workflow", "agent:research"]);
    const r = await runWorkflow(key.secret);
    expect(r.status).toBe(200);
    expect(r.body.complete).toBe(false);
    expect(r.body.research.ok).toBe(true);
    expect(r.body.tools).toMatchObject({ ok: false, stage: "exchange", error: "invalid_target" });
    expect(r.body.tools.message).toContain("agent:tools");
    expect(r.body.answer).toContain("Text analysis was not available (invalid_target).");
    expect(r.seen.map((s) => s.agent)).toEqual(["workflow", "research"]);
  });

  it("does not let the workflow exchange the caller's token for an agent outside its may_call", async () => {
    expect((await kw.admin("POST", "/agents", { name: "billing", upstream: example.urls.research })).status).toBe(201);
    const key = await callerKey(["agent:workflow", "agent:research", "agent:billing"]);
    const r = await runWorkflow(key.secret);
    expect(r.status).toBe(200);
    const subjectToken = bearerOf(r.seen[0] as Seen);

    const exchange = (audience: string) =>
      exchangeToken({ url: kw.url, actorToken: example.workflowKey.secret, subjectToken, audience });
    // The caller could call billing, but the workflow was never granted it.
    const refused = await exchange("billing").catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ExchangeError);
    expect(refused).toMatchObject({ error: "invalid_target", status: 400 });
    expect((refused as ExchangeError).message).not.toContain(subjectToken);
    // The same token and actor key still work for an agent in may_call.
    expect(decodeJwt((await exchange("research")).accessToken)).toMatchObject({
      aud: "research",
      sub: "consumer:acme",
    });
  });

  it("has every agent refuse, with the SDK's 401, a token minted for another agent", async () => {
    const r = await runWorkflow(example.callerKey.secret);
    const workflowJwt = bearerOf(r.seen[0] as Seen);
    const { accessToken: forResearch } = await exchangeToken({
      url: kw.url,
      actorToken: example.workflowKey.secret,
      subjectToken: workflowJwt,
      audience: "research",
    });

    // Straight to the agents, as someone on their network would: only their own audience passes.
    const direct = [
      { url: `${example.urls.tools}/invoke`, token: forResearch, body: { input: { text: "x" } } },
      { url: `${example.urls.research}/search`, token: workflowJwt, body: { query: "token" } },
      { url: `${example.urls.workflow}/run`, token: forResearch, body: { question: "token" } },
    ];
    for (const d of direct) {
      const res = await fetch(d.url, {
        method: "POST",
        headers: { authorization: `Bearer ${d.token}`, "content-type": "application/json" },
        body: JSON.stringify(d.body),
      });
      expect(res.status, d.url).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Bearer error="invalid_token"');
      const body = await readJson<ApiErrorBody>(res);
      expect(body.error.code).toBe("invalid_token");
      expect(JSON.stringify(body)).not.toContain(d.token);
    }
    const anonymous = await fetch(`${example.urls.research}/search`, { method: "POST" });
    expect(anonymous.status).toBe(401);
    expect((await readJson<ApiErrorBody>(anonymous)).error.code).toBe("missing_credentials");

    // Through the gateway too: a token bound to research does not open tools.
    const viaGateway = await fetch(`${kw.url}/agents/tools/invoke`, {
      method: "POST",
      headers: { authorization: `Bearer ${forResearch}`, "content-type": "application/json" },
      body: JSON.stringify({ input: { text: "x" } }),
    });
    expect(viaGateway.status).toBe(401);
    expect((await readJson<ApiErrorBody>(viaGateway)).error.code).toBe("invalid_token");
  });

  it("ends the caller's access, delegated tokens included, when the caller's key is revoked", async () => {
    const key = await callerKey(["agent:workflow", "agent:research", "agent:tools"]);
    const before = await runWorkflow(key.secret);
    expect(before.status).toBe(200);
    expect(before.body.complete).toBe(true);
    const workflowJwt = bearerOf(before.seen[0] as Seen);

    expect((await kw.admin("POST", `/keys/${key.id}/revoke`)).status).toBe(200);
    const after = await runWorkflow(key.secret);
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe("key_revoked");
    expect(after.seen).toEqual([]);

    // A workflow still holding the caller's JWT can no longer turn it into downstream tokens.
    const late = await exchangeToken({
      url: kw.url,
      actorToken: example.workflowKey.secret,
      subjectToken: workflowJwt,
      audience: "research",
    }).catch((err: unknown) => err);
    expect(late).toMatchObject({ error: "invalid_grant" });
  });
});
