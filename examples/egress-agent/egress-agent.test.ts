import net from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentProcess, startAgentProcess } from "../../packages/server/test-support/agent-process.js";
import { leakForms } from "../../packages/server/test-support/egress/upstreams.js";
import { type FakeOpenAI, startFakeOpenAI } from "../../packages/server/test-support/fake-openai.js";
import { startTestServer, type TestServer } from "../../packages/server/test-support/server.js";

/**
 * The example as a user runs it (`node examples/egress-agent/agent.mjs`), against a real Keyward
 * and a local stand-in for OpenAI. Every byte Keyward sends the agent passes a recording relay,
 * so the test can look through all the agent ever received for the OpenAI key.
 */

const SCRIPT = join(import.meta.dirname, "agent.mjs");
const SECRET = "sk-proj-egress-first-Zr5Wq1Tx8Kc3Vn6Bm";
const ROTATED = "sk-proj-egress-second-Lp2Hd7Gs4Jf9Xy0Ca";

let kw: TestServer;
let openai: FakeOpenAI;
let relay: Awaited<ReturnType<typeof startRecordingRelay>>;
let agent: AgentProcess;
let agentKey: string;
let agentEnv: Record<string, string>;
/** Everything the agent answered its callers. */
const answers: string[] = [];

/** A TCP relay to Keyward that keeps every byte going each way. */
async function startRecordingRelay(target: number) {
  const toAgent: Buffer[] = [];
  const toKeyward: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((agentSide) => {
    const keywardSide = net.connect(target, "127.0.0.1");
    sockets.add(agentSide).add(keywardSide);
    agentSide.on("data", (d: Buffer) => toKeyward.push(d));
    keywardSide.on("data", (d: Buffer) => toAgent.push(d));
    const drop = () => {
      agentSide.destroy();
      keywardSide.destroy();
    };
    agentSide.on("error", drop).on("close", drop);
    keywardSide.on("error", drop).on("close", drop);
    agentSide.pipe(keywardSide).pipe(agentSide);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    received: () => Buffer.concat(toAgent).toString("latin1"),
    sent: () => Buffer.concat(toKeyward).toString("latin1"),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function admin(method: string, path: string, body?: unknown) {
  const res = await kw.admin(method, path, body);
  if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function chat(message: string) {
  const res = await fetch(`${agent.url}/chat`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ message }),
  });
  const text = await res.text();
  answers.push(text);
  return { status: res.status, body: JSON.parse(text) };
}

beforeAll(async () => {
  [kw, openai] = await Promise.all([startTestServer(), startFakeOpenAI({ keys: [SECRET] })]);
  relay = await startRecordingRelay(Number(new URL(kw.url).port));
  await admin("POST", "/agents", { name: "egress-agent", upstream: "http://127.0.0.1:9" });
  agentKey = (await admin("POST", "/keys", { owner: "agent:egress-agent", scopes: [] })).secret;
  // In production base_url is https://api.openai.com; here the stand-in.
  await admin("PUT", "/credentials/openai_key", {
    value: SECRET,
    egress: { base_url: openai.url, header: "Authorization", format: "Bearer {value}" },
  });
  await admin("PUT", "/agents/egress-agent/grants", { credentials: [{ name: "openai_key", mode: "inject" }] });
  agentEnv = { KEYWARD_URL: relay.url, KEYWARD_AGENT_KEY: agentKey, PORT: "0" };
  agent = await startAgentProcess(SCRIPT, agentEnv);
});

afterAll(async () => {
  await agent?.stop();
  await relay?.close();
  await kw?.close();
  await openai?.close();
});

describe("egress-agent example", () => {
  it("answers with OpenAI through Keyward: OpenAI gets exactly the key, never the agent's", async () => {
    expect(await chat("hello through egress")).toEqual({
      status: 200,
      body: { answer: "echo: hello through egress", model: "gpt-4o-mini" },
    });
    const seen = openai.requests.at(-1)!;
    expect(seen.path).toBe("/v1/chat/completions");
    expect(seen.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(JSON.stringify(seen.headers)).not.toContain(agentKey);
    // …and the agent did send its own key, to Keyward only.
    expect(relay.sent()).toContain(`authorization: Bearer ${agentKey}`);
  });

  it("uses a rotated key from the next request, with nothing to do in the agent", async () => {
    openai.accept([ROTATED]);
    await admin("PUT", "/credentials/openai_key", { value: ROTATED });
    expect((await chat("after rotation")).body.answer).toBe("echo: after rotation");
    expect(openai.requests.at(-1)?.headers.authorization).toBe(`Bearer ${ROTATED}`);
  });

  it("passes on OpenAI's error quoting the key with the key redacted", async () => {
    // The provider no longer takes the key; its 401 quotes the key it got, in full.
    openai.accept([]);
    try {
      const r = await chat("rejected");
      expect(r.status).toBe(502);
      expect(r.body.error).toMatchObject({ code: "openai_error", status: 401, upstream_code: "invalid_api_key" });
      expect(r.body.error.message).toContain("Incorrect API key provided: [redacted]");
    } finally {
      openai.accept([ROTATED]);
    }
  });

  it("is refused by Keyward once its grant is withdrawn", async () => {
    const before = openai.requests.length;
    await admin("PUT", "/agents/egress-agent/grants", { credentials: [] });
    try {
      const r = await chat("no grant");
      expect(r.status).toBe(502);
      expect(r.body.error).toMatchObject({ status: 403, upstream_code: "credential_not_granted" });
      expect(openai.requests.length).toBe(before);
    } finally {
      await admin("PUT", "/agents/egress-agent/grants", { credentials: [{ name: "openai_key", mode: "inject" }] });
    }
    expect((await chat("granted again")).status).toBe(200);
  });

  it("never received either key: not in any byte from Keyward, its environment, output or answers", () => {
    const received = relay.received();
    // The recording is real: it holds every answer OpenAI gave, and the redacted refusal.
    expect(received.match(/chatcmpl-fake-\d+/g)?.length).toBeGreaterThanOrEqual(3);
    expect(received).toContain("[redacted]");
    const everything = [received, JSON.stringify(agentEnv), agent.stdout(), agent.stderr(), ...answers].join("\n");
    for (const secret of [SECRET, ROTATED]) {
      for (const [form, value] of Object.entries(leakForms(secret))) expect(everything, form).not.toContain(value);
      // Not even a long piece of it.
      expect(everything).not.toContain(secret.slice(8, 24));
    }
    // Meanwhile the stand-in for OpenAI got exactly the key, on every request.
    const keys = new Set(openai.requests.map((r) => r.headers.authorization));
    expect(keys).toEqual(new Set([`Bearer ${SECRET}`, `Bearer ${ROTATED}`]));
  });
});
