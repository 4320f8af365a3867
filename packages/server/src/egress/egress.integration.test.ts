import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentWithKey, egressCall, grant, putCredential } from "../../test-support/egress/agents.js";
import { bigBody, leakForms, startEgressUpstream, startTrap } from "../../test-support/egress/upstreams.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { readJson, type TokenEndpointBody } from "../../test-support/wire.js";

const SECRET = "sk-test-4f9Qx2Lm7RbN8kZp3WcY1dHs6Ej0GaTv";
const MARK = "[redacted]";

let kw: TestServer;
let up: Awaited<ReturnType<typeof startEgressUpstream>>;
let trap: Awaited<ReturnType<typeof startTrap>>;
let botKey: string;

beforeAll(async () => {
  up = await startEgressUpstream();
  trap = await startTrap();
  kw = await startTestServer({ KEYWARD_UPSTREAM_TIMEOUT_MS: "1000" });
  botKey = await agentWithKey(kw, "bot");
  await putCredential(kw, "openai", SECRET, { base_url: `${up.url}/api/v1` });
  await putCredential(kw, "tickets", "tk-0123456789abcdef", {
    base_url: up.url,
    header: "X-Upstream-Key",
    format: "Token {value}",
  });
  await putCredential(kw, "plain", "no-egress-value-123");
  await putCredential(kw, "dead", "dead-value-0123456789", { base_url: "http://127.0.0.1:9/x" });
  await putCredential(kw, "slow", "slow-value-0123456789", { base_url: `${up.url}/hang` });
  await grant(kw, "bot", [
    { name: "openai", mode: "inject" },
    { name: "tickets", mode: "read" },
    { name: "plain", mode: "inject" },
    { name: "dead", mode: "inject" },
    { name: "slow", mode: "inject" },
  ]);
});
afterAll(async () => {
  await kw?.close();
  await up?.close();
  await trap?.close();
});

async function json(res: Response) {
  const text = await res.text();
  expect(text).not.toContain(SECRET);
  return JSON.parse(text);
}

describe("egress: forwarding", () => {
  it("forwards to base_url + path with the query and body, the secret injected and the agent's key removed", async () => {
    const res = await egressCall(kw, botKey, "openai/chat/completions?stream=false&q=a%20b", {
      method: "POST",
      headers: { "content-type": "application/json", "x-custom": "kept" },
      body: JSON.stringify({ model: "m" }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBeTruthy();
    const last = up.seen.at(-1)!;
    expect(last.method).toBe("POST");
    expect(last.url).toBe("/api/v1/chat/completions?stream=false&q=a%20b");
    expect(last.body).toBe('{"model":"m"}');
    expect(last.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(last.headers["x-custom"]).toBe("kept");
    expect(last.headers.host).toBe(up.host);
    expect(last.headers["accept-encoding"]).toBe("identity");
    expect(JSON.stringify(last.headers)).not.toContain(botKey);
    // The upstream echoed the headers it saw; the agent gets them with the secret removed.
    const echoed = await json(res);
    expect(echoed.headers.authorization).toBe(`Bearer ${MARK}`);
  });

  it("uses the template's header and format, and strips an X-API-Key the agent authenticated with", async () => {
    const res = await fetch(`${kw.url}/egress/tickets/issues/7`, {
      headers: { "x-api-key": botKey, "x-upstream-key": "agent-chosen-value" },
    });
    expect(res.status).toBe(200);
    const last = up.seen.at(-1)!;
    expect(last.url).toBe("/issues/7");
    expect(last.headers["x-upstream-key"]).toBe("Token tk-0123456789abcdef");
    expect(last.headers["x-api-key"]).toBeUndefined();
    expect(last.headers.authorization).toBeUndefined();
    expect(await res.text()).not.toContain("tk-0123456789abcdef");
  });

  it("asks for whole, uncompressed bodies: Range and Accept-Encoding are not the agent's to choose", async () => {
    const res = await egressCall(kw, botKey, "openai/doc", {
      headers: { range: "bytes=0-9", "if-range": '"x"', "accept-encoding": "gzip, br" },
    });
    expect(res.status).toBe(200);
    await res.text();
    const last = up.seen.at(-1)!;
    expect(last.headers.range).toBeUndefined();
    expect(last.headers["if-range"]).toBeUndefined();
    expect(last.headers["accept-encoding"]).toBe("identity");
  });

  it("accepts an access token whose sub is the agent", async () => {
    const t = await fetch(`${kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: botKey }),
    });
    expect(t.status).toBe(200);
    const { access_token } = await readJson<TokenEndpointBody>(t);
    const res = await egressCall(kw, access_token, "openai/models");
    expect(res.status).toBe(200);
    expect(up.seen.at(-1)!.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(JSON.stringify(up.seen.at(-1)!.headers)).not.toContain(access_token);
  });

  it("streams server-sent events as the upstream produces them, redacted", async () => {
    const res = await egressCall(kw, botKey, "openai/sse");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    const received: string[] = [];
    for (let i = 1; i <= 3; i++) {
      await up.sse.next();
      let text = "";
      while (!text.endsWith("\n\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value);
      }
      received.push(text);
    }
    expect(received).toEqual(["data: event 1 \n\n", `data: event 2 ${MARK}\n\n`, "data: event 3 \n\n"]);
    await reader.cancel();
  });

  it("takes a new value at once after the credential is updated", async () => {
    const next = "sk-test-rotated-7Hq2Zx9Lp4Wm1Nc8Rb3Tv6Ks";
    const version = await putCredential(kw, "openai", next);
    try {
      const res = await egressCall(kw, botKey, "openai/leak");
      const body = await res.text();
      expect(up.seen.at(-1)!.headers.authorization).toBe(`Bearer ${next}`);
      for (const form of Object.values(leakForms(next))) expect(body).not.toContain(form);
      const audit = await kw.admin("GET", "/audit?action=credential.inject&limit=1");
      expect(audit.body.events[0].details.version).toBe(version);
    } finally {
      await putCredential(kw, "openai", SECRET);
    }
  });
});

describe("egress: the secret never reaches the agent", () => {
  it("redacts every form of the secret from response headers and a body written in small pieces", async () => {
    const res = await egressCall(kw, botKey, "openai/leak");
    expect(res.status).toBe(200);
    const body = await res.text();
    const headers = [...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n");
    for (const [name, form] of Object.entries(leakForms(SECRET))) {
      expect(body, name).not.toContain(form);
      expect(headers, name).not.toContain(form);
      expect(body).toContain(`${name}=`);
    }
    expect(body.split(MARK).length - 1).toBe(Object.keys(leakForms(SECRET)).length);
    expect(res.headers.get("x-leak-raw")).toBe(MARK);
    expect(res.headers.get("x-safe")).toBe("kept");
    expect(headers).not.toContain("named by the secret");
  });

  it("decompresses a response the upstream compressed anyway, and redacts it", async () => {
    const res = await egressCall(kw, botKey, "openai/gzip-leak");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-encoding")).toBeNull();
    const body = await res.text();
    expect(body).toContain("raw=[redacted]");
    for (const form of Object.values(leakForms(SECRET))) expect(body).not.toContain(form);
  });

  it("refuses a response in an encoding it cannot scan", async () => {
    const res = await egressCall(kw, botKey, "openai/compress");
    expect(res.status).toBe(502);
    expect((await json(res)).error.code).toBe("upstream_unavailable");
  });
});

describe("egress: bodies both ways", () => {
  it("streams a large request body to the upstream", async () => {
    const chunk = new Uint8Array(64 * 1024).fill(120);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 32) return controller.close();
        sent++;
        controller.enqueue(chunk);
      },
    });
    const res = await egressCall(kw, botKey, "openai/upload", {
      method: "PUT",
      body,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(200);
    await res.text();
    expect(up.seen.at(-1)!.body.length).toBe(32 * 64 * 1024);
  });

  it("streams a large response through the redactor, every straddling secret removed, nothing else changed", async () => {
    const res = await egressCall(kw, botKey, "openai/big");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBeNull();
    const got = Buffer.from(await res.arrayBuffer());
    const expected = Buffer.from(bigBody(SECRET).toString("latin1").replaceAll(SECRET, MARK), "latin1");
    expect(got.length).toBe(expected.length);
    expect(got.equals(expected)).toBe(true);
  });

  it("answers HEAD and 204 without a body, headers redacted", async () => {
    const head = await egressCall(kw, botKey, "openai/models", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(up.seen.at(-1)!.method).toBe("HEAD");
    const empty = await egressCall(kw, botKey, "openai/empty");
    expect(empty.status).toBe(204);
    expect(empty.headers.get("x-empty")).toBe(MARK);
  });
});

describe("egress: redirects", () => {
  it("points a redirect under base_url back through egress", async () => {
    const res = await egressCall(kw, botKey, `openai/redirect?to=${encodeURIComponent(`${up.url}/api/v1/next?p=1`)}`);
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/egress/openai/next?p=1");
  });

  it("drops a Location to another origin, never follows it, and the secret goes nowhere else", async () => {
    for (const to of [`${trap.url}/steal`, `//${trap.host}/steal`, `${up.url}/admin`]) {
      const res = await egressCall(kw, botKey, `openai/redirect?to=${encodeURIComponent(to)}`);
      expect(res.status, to).toBe(302);
      expect(res.headers.get("location"), to).toBeNull();
      expect(res.headers.get("x-keyward-location-dropped")).toBeTruthy();
      await res.text();
    }
    expect(trap.hits).toEqual([]);
  });
});

describe("egress: refusals", () => {
  async function expectError(res: Response, status: number, code: string) {
    expect(res.status).toBe(status);
    const body = await json(res);
    expect(body.error.code).toBe(code);
    expect(typeof body.error.request_id).toBe("string");
    return body;
  }

  it("401 without a credential, 401 with a bad key", async () => {
    await expectError(await fetch(`${kw.url}/egress/openai/x`), 401, "missing_credentials");
    await expectError(await egressCall(kw, "kwk_notavalidkey", "openai/x"), 401, "invalid_key");
  });

  it("403 for a caller that is not an agent", async () => {
    expect((await kw.admin("POST", "/consumers", { name: "acme" })).status).toBe(201);
    const key = await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:*"] });
    await expectError(await egressCall(kw, key.body.secret, "openai/x"), 403, "forbidden");
  });

  it("403 credential_not_granted for an ungranted credential, and the same for an unknown one", async () => {
    const otherKey = await agentWithKey(kw, "other");
    const a = await expectError(await egressCall(kw, otherKey, "openai/x"), 403, "credential_not_granted");
    const b = await expectError(await egressCall(kw, otherKey, "nope/x"), 403, "credential_not_granted");
    expect(a.error.message.replace("openai", "N")).toBe(b.error.message.replace("nope", "N"));
  });

  it("400 egress_not_configured for a granted credential without egress", async () => {
    await expectError(await egressCall(kw, botKey, "plain/x"), 400, "egress_not_configured");
  });

  it("502 when the upstream is unreachable, 504 when it does not answer in time", async () => {
    await expectError(await egressCall(kw, botKey, "dead/x"), 502, "upstream_unavailable");
    await expectError(await egressCall(kw, botKey, "slow"), 504, "upstream_timeout");
  });

  it("audits a use whose caller left before the upstream answered", async () => {
    const before = up.seen.length;
    const abort = new AbortController();
    const pending = egressCall(kw, botKey, "slow", { signal: abort.signal }).catch((err: Error) => err);
    while (up.seen.length === before) await new Promise((r) => setImmediate(r));
    abort.abort();
    expect(await pending).toBeInstanceOf(Error);
    for (let i = 0; i < 200; i++) {
      const audit = await kw.admin("GET", "/audit?action=credential.inject&limit=5");
      if (audit.body.events.some((e: { code?: string }) => e.code === "client_closed")) return;
    }
    throw new Error("no client_closed record");
  });

  it("a removed grant takes effect on the next request", async () => {
    await putCredential(kw, "temp", "temp-value-0123456789", { base_url: up.url });
    await grant(kw, "bot", [
      { name: "openai", mode: "inject" },
      { name: "temp", mode: "inject" },
    ]);
    expect((await egressCall(kw, botKey, "temp/x")).status).toBe(200);
    await grant(kw, "bot", [{ name: "openai", mode: "inject" }]);
    await expectError(await egressCall(kw, botKey, "temp/x"), 403, "credential_not_granted");
  });
});

describe("egress: audit and metrics", () => {
  it("audits each use with agent, credential, version, upstream host and status, and counts it", async () => {
    const before = await injections();
    const res = await egressCall(kw, botKey, "openai/models");
    await res.text();
    const audit = await kw.admin("GET", "/audit?action=credential.inject&limit=1");
    const e = audit.body.events[0];
    expect(e).toMatchObject({
      actor: "agent:bot",
      action: "credential.inject",
      target: "credential:openai",
      outcome: "success",
      details: { upstream_host: up.host, upstream_status: 200, method: "GET", via: "key" },
    });
    expect(typeof e.details.version).toBe("number");
    expect(await injections()).toBe(before + 1);
  });

  it("audits a refusal with its code", async () => {
    await egressCall(kw, botKey, "openai/..%2f..%2fadmin");
    const audit = await kw.admin("GET", "/audit?action=credential.inject&limit=1");
    expect(audit.body.events[0]).toMatchObject({ outcome: "denied", code: "invalid_request", actor: "agent:bot" });
  });
});

async function injections(): Promise<number> {
  const text = await (await fetch(`${kw.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith('keyward_credential_reads_total{mode="inject"}'));
  return line ? Number(line.split(" ")[1]) : 0;
}
