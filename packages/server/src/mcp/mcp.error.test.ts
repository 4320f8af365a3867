import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setUserCredential, userKey, writeMcpConfig } from "../../test-support/mcp/fixtures.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";

const ACCEPT = "application/json, text/event-stream";

describe("MCP gateway: bad input", () => {
  let kw: TestServer;
  let key: string;

  beforeAll(async () => {
    kw = await startTestServer({}, { configFile: writeMcpConfig() });
    await setUserCredential(kw, "alice", "cloud_key", "AKIA-alice-err-000111");
    key = await userKey(kw, "alice", ["mcp:*"]);
  });
  afterAll(async () => {
    await kw?.close();
  });

  async function send(opts: {
    server?: string;
    method?: string;
    body?: string;
    headers?: Record<string, string>;
    // biome-ignore lint/suspicious/noExplicitAny: each test asserts the shape it needs
  }): Promise<{ status: number; headers: Headers; body: any }> {
    const res = await fetch(`${kw.url}/mcp/${opts.server ?? "cloud"}`, {
      method: opts.method ?? "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", accept: ACCEPT, ...opts.headers },
      ...(opts.body !== undefined ? { body: opts.body } : {}),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  }
  const rpc = (method: string, params?: unknown, id: number | string = 1) =>
    JSON.stringify({ jsonrpc: "2.0", id, method, ...(params !== undefined ? { params } : {}) });

  it("malformed JSON → 400 invalid_request in the SPEC body", async () => {
    const r = await send({ body: '{"jsonrpc": "2.0", "id": 1, "method": ' });
    expect(r.status).toBe(400);
    expect(r.body).toEqual({
      error: { code: "invalid_request", message: expect.any(String), request_id: expect.any(String) },
    });
  });

  it("a body over 1 MiB → 413 payload_too_large", async () => {
    const huge = rpc("tools/call", { name: "echo_args", arguments: { name: "x".repeat(1024 * 1024 + 10) } });
    const r = await send({ body: huge });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe("payload_too_large");
  });

  it("a body that is not JSON → 415", async () => {
    const r = await send({ body: "ping", headers: { "content-type": "text/plain" } });
    expect(r.status).toBe(415);
    expect(r.body.error.code).toBe("unsupported_media_type");
  });

  it("an unknown server → 404 for a caller whose scopes cover it, 403 otherwise", async () => {
    const r = await send({ server: "nope", body: rpc("ping") });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("not_found");
    const narrow = await userKey(kw, "alice", ["mcp:cloud"]);
    const denied = await send({ server: "nope", body: rpc("ping"), headers: { authorization: `Bearer ${narrow}` } });
    expect(denied.status).toBe(403);
    const bad = await send({ server: "%00", body: rpc("ping") });
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(bad.status).toBeLessThan(500);
  });

  it("GET and DELETE → 405 with Allow: POST (stateless: no stream, no session); PUT → 405", async () => {
    for (const method of ["GET", "DELETE", "PUT"]) {
      const r = await send({ method, ...(method === "PUT" ? { body: "{}" } : {}) });
      expect(r.status).toBe(405);
      expect(r.body.error.code).toBe("method_not_allowed");
      expect(r.headers.get("allow")).toMatch(/POST/);
    }
  });

  it("JSON that is not a JSON-RPC message → 400 with a JSON-RPC parse error", async () => {
    for (const body of ['{"hello": "world"}', "[]", "42", '{"jsonrpc": "1.0", "id": 1, "method": "ping"}']) {
      const r = await send({ body });
      expect(r.status).toBe(400);
      expect(r.body.jsonrpc).toBe("2.0");
      expect(r.body.error.code).toBeLessThan(0);
    }
  });

  it("a client that does not accept JSON and SSE → 406; an unknown protocol version → 400", async () => {
    const r = await send({ body: rpc("ping"), headers: { accept: "text/html" } });
    expect(r.status).toBe(406);
    const v = await send({ body: rpc("ping"), headers: { "mcp-protocol-version": "1999-01-01" } });
    expect(v.status).toBe(400);
    expect(v.body.error.message).toMatch(/Unsupported protocol version/);
  });

  it("initialize negotiates a version; notifications alone → 202; ping → {}", async () => {
    const init = await send({
      body: rpc("initialize", {
        protocolVersion: "2025-06-18",
        capabilities: {},
        clientInfo: { name: "t", version: "1" },
      }),
    });
    expect(init.status).toBe(200);
    expect(init.body.result).toMatchObject({ protocolVersion: "2025-06-18", capabilities: { tools: {} } });
    const note = await send({ body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) });
    expect(note.status).toBe(202);
    expect((await send({ body: rpc("ping", undefined, "p") })).body).toEqual({ jsonrpc: "2.0", id: "p", result: {} });
    const twice = await send({
      body: `[${rpc("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } })}, ${rpc("ping", undefined, 2)}]`,
    });
    expect(twice.status).toBe(400);
  });

  it("methods the gateway does not offer → JSON-RPC method not found", async () => {
    for (const method of ["prompts/list", "resources/list", "resources/read", "sampling/createMessage"]) {
      const r = await send({ body: rpc(method, {}) });
      expect(r.status).toBe(200);
      expect(r.body.error).toEqual({ code: -32601, message: "Method not found" });
    }
  });

  it("tools/call with invalid params → JSON-RPC invalid params; a batch gets one answer per request", async () => {
    const r = await send({ body: rpc("tools/call", { arguments: {} }) });
    expect(r.body.error.code).toBe(-32602);
    const batch = await send({ body: `[${rpc("ping", undefined, 1)}, ${rpc("tools/call", { name: 5 }, 2)}]` });
    expect(batch.body).toEqual([
      { jsonrpc: "2.0", id: 1, result: {} },
      { jsonrpc: "2.0", id: 2, error: { code: -32602, message: "Invalid params" } },
    ]);
  });

  it("a progressToken that is neither a string nor an integer → 400 JSON-RPC parse error, no stream", async () => {
    for (const progressToken of [{ x: 1 }, 1.5, true, null]) {
      const r = await send({ body: rpc("tools/call", { name: "whoami", arguments: {}, _meta: { progressToken } }) });
      expect(r.status).toBe(400);
      expect(r.headers.get("content-type")).toMatch(/^application\/json/);
      expect(r.body.error.code).toBe(-32700);
    }
  });

  it("an unknown tool gets the upstream's own answer, cleanly", async () => {
    const r = await send({ body: rpc("tools/call", { name: "no_such_tool", arguments: {} }) });
    expect(r.status).toBe(200);
    const answer = r.body.result ?? r.body.error;
    expect(JSON.stringify(answer)).toMatch(/no_such_tool/);
  });
});
