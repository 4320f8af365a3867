import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AgentProcess,
  runAgentToExit,
  startAgentProcess,
} from "../../packages/server/test-support/agent-process.js";
import { type FakeOpenAI, startFakeOpenAI } from "../../packages/server/test-support/fake-openai.js";
import { startTestServer, type TestServer } from "../../packages/server/test-support/server.js";

/**
 * The example as a user runs it: `node examples/openai-agent/agent.mjs` with only KEYWARD_URL,
 * KEYWARD_AGENT_KEY and PORT (and OPENAI_BASE_URL pointing at a local stand-in for OpenAI),
 * against a real Keyward.
 */

const SCRIPT = join(import.meta.dirname, "agent.mjs");
const FIRST = "sk-proj-first-Qm4Zt8Wc1Lx6";
const SECOND = "sk-proj-second-Hv3Nd9Ry2Kb5";

let kw: TestServer;
let openai: FakeOpenAI;
let agentKey: string;
let agent: AgentProcess;

async function admin(method: string, path: string, body?: unknown) {
  const res = await kw.admin(method, path, body);
  if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function post(path: string, payload: unknown) {
  const res = await fetch(`${agent.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(payload),
  });
  // biome-ignore lint/suspicious/noExplicitAny: each test asserts the shape it needs
  const body: any = await res.json();
  return { status: res.status, body };
}

beforeAll(async () => {
  [kw, openai] = await Promise.all([
    startTestServer({}, { credentials: { heartbeatMs: 500 } }),
    startFakeOpenAI({ keys: [FIRST] }),
  ]);
  await admin("POST", "/agents", { name: "openai-agent", upstream: "http://127.0.0.1:9" });
  agentKey = (await admin("POST", "/keys", { owner: "agent:openai-agent", scopes: [] })).secret;
  await admin("PUT", "/credentials/openai_key", { value: FIRST });
  await admin("PUT", "/agents/openai-agent/grants", { credentials: [{ name: "openai_key", mode: "read" }] });
  agent = await startAgentProcess(SCRIPT, {
    KEYWARD_URL: kw.url,
    KEYWARD_AGENT_KEY: agentKey,
    PORT: "0",
    OPENAI_BASE_URL: `${openai.url}/v1`,
  });
});

afterAll(async () => {
  await agent?.stop();
  await kw?.close();
  await openai?.close();
});

describe("openai-agent example", () => {
  it("answers with OpenAI, using the key from Keyward for the SDK client and the resolved config", async () => {
    const chat = await post("/chat", { message: "what is Keyward?" });
    expect(chat).toEqual({ status: 200, body: { answer: "echo: what is Keyward?", model: "gpt-4o-mini" } });
    expect(openai.requests.at(-1)).toMatchObject({ path: "/v1/chat/completions", body: { model: "gpt-4o-mini" } });
    expect(openai.requests.at(-1)?.headers.authorization).toBe(`Bearer ${FIRST}`);

    const embed = await post("/embed", { text: "rotation" });
    expect(embed).toEqual({ status: 200, body: { dimensions: 4, model: "text-embedding-3-small" } });
    expect(openai.requests.at(-1)).toMatchObject({ path: "/v1/embeddings", body: { input: "rotation" } });
    expect(openai.requests.at(-1)?.headers.authorization).toBe(`Bearer ${FIRST}`);
  });

  it("switches to a rotated key without a restart", async () => {
    // The provider issues a new key and revokes the old one; the admin saves the new one in Keyward.
    openai.accept([SECOND]);
    const { version } = await admin("PUT", "/credentials/openai_key", { value: SECOND });
    await agent.waitFor(new RegExp(`openai_key is now version ${version}: OpenAI client rebuilt`));

    const chat = await post("/chat", { message: "still there?" });
    expect(chat).toEqual({ status: 200, body: { answer: "echo: still there?", model: "gpt-4o-mini" } });
    expect(openai.requests.at(-1)?.headers.authorization).toBe(`Bearer ${SECOND}`);
    expect((await post("/embed", { text: "again" })).status).toBe(200);
    expect(openai.requests.at(-1)?.headers.authorization).toBe(`Bearer ${SECOND}`);
    expect(agent.child.exitCode).toBeNull();
  });

  it("reports OpenAI's refusal of a revoked key as a 502 with OpenAI's status", async () => {
    openai.accept([]);
    try {
      const chat = await post("/chat", { message: "hello" });
      expect(chat.status).toBe(502);
      expect(chat.body.error).toMatchObject({ code: "openai_error", status: 401 });
      expect((await post("/embed", { text: "hello" })).body.error).toMatchObject({ code: "openai_error", status: 401 });
    } finally {
      openai.accept([SECOND]);
    }
  });

  it("refuses bad requests with a 400 or 404 and calls nobody", async () => {
    const before = openai.requests.length;
    expect((await post("/chat", { message: "" })).status).toBe(400);
    expect((await post("/chat", ["not", "an", "object"])).status).toBe(400);
    expect((await fetch(`${agent.url}/nowhere`)).status).toBe(404);
    expect(openai.requests.length).toBe(before);
  });

  it("never prints the key", () => {
    for (const key of [FIRST, SECOND, agentKey]) {
      expect(agent.stdout()).not.toContain(key);
      expect(agent.stderr()).not.toContain(key);
    }
  });

  it("does not start with a key Keyward refuses, saying why", async () => {
    const revoked = await admin("POST", "/keys", { owner: "agent:openai-agent", scopes: [] });
    await admin("POST", `/keys/${revoked.key.id}/revoke`);
    const run = await runAgentToExit(SCRIPT, { KEYWARD_URL: kw.url, KEYWARD_AGENT_KEY: revoked.secret, PORT: "0" });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^cannot start: key_revoked: /);
    expect(run.stderr).not.toContain(revoked.secret);
  });
});
