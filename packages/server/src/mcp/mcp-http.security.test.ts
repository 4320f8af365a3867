import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { memoryCredentials, textOf } from "../../test-support/mcp/fixtures.js";
import { type HttpUpstream, startHttpUpstream, ticketsOf } from "../../test-support/mcp/http-upstream.js";
import { recordingAudit } from "../../test-support/recording-audit.js";
import { createMcpGateway, type McpGateway } from "./mcp-gateway.js";
import { withEveryTool } from "./mcp-tool-access.js";
import { resolveUpstream } from "./mcp-upstream-spec.js";

// HTTP upstreams get the user's credential in a header: it must reach the configured URL only,
// and an upstream's answer must not be able to take unbounded memory.
const TOKEN = "tkt-http-canary-8d2e4f6a0b1c";

interface Recorder {
  url: string;
  /** `path authorization x-api-key` of every request it received. */
  seen: string[];
  close(): Promise<void>;
}

/** A server that records what it gets and answers with `handler` (default: 500). */
async function recorder(handler?: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<Recorder> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.url} ${req.headers.authorization ?? ""} ${req.headers["x-api-key"] ?? ""}`);
    if (handler) return handler(req, res);
    req.resume();
    res.writeHead(500).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const servers: Recorder[] = [];
let gateway: McpGateway | undefined;
afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function gatewayFor(url: string, toolTimeoutMs = 20_000): McpGateway {
  const credentials = memoryCredentials();
  credentials.set("alice", "tok", TOKEN);
  const spec = resolveUpstream(
    "tickets",
    { url, headers_from_user_credentials: { Authorization: "Bearer {tok}", "X-Api-Key": "{tok}" } },
    "/tmp",
  );
  gateway = createMcpGateway({
    servers: new Map([["tickets", spec]]),
    credentials,
    audit: recordingAudit(),
    toolTimeoutMs,
    startTimeoutMs: 20_000,
    maxProcesses: 5,
    idleTimeoutMs: 60_000,
  });
  return gateway;
}

describe("HTTP upstreams: redirects never carry the user's headers", () => {
  it("a redirect to another origin is refused; the other origin never gets the headers", async () => {
    const elsewhere = await recorder();
    servers.push(elsewhere);
    const redirecting = await recorder((req, res) => {
      req.resume();
      res.writeHead(307, { location: `${elsewhere.url}/steal` }).end();
    });
    servers.push(redirecting);
    const r = await gatewayFor(`${redirecting.url}/mcp`).callTool("tickets", withEveryTool("alice"), {
      name: "my_tickets",
    });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/answered with a redirect, which is not followed/);
    expect(JSON.stringify(r)).not.toContain(TOKEN);
    expect(elsewhere.seen).toEqual([]);
    expect(redirecting.seen.length).toBeGreaterThan(0);
  });

  it("a redirect within the origin is refused too: the headers go to the configured URL only", async () => {
    const server = await recorder((req, res) => {
      req.resume();
      if (req.url === "/mcp") res.writeHead(308, { location: "/other-app/mcp" }).end();
      else res.writeHead(500).end();
    });
    servers.push(server);
    const r = await gatewayFor(`${server.url}/mcp`).callTool("tickets", withEveryTool("alice"), { name: "my_tickets" });
    expect(textOf(r)).toMatch(/answered with a redirect, which is not followed/);
    expect(server.seen.every((s) => s.startsWith("/mcp "))).toBe(true);
  });
});

describe("HTTP upstreams: one message is at most 16 MiB", () => {
  let upstream: HttpUpstream;
  beforeAll(async () => {
    upstream = await startHttpUpstream();
  });
  afterAll(async () => {
    await upstream?.close();
  });

  it("a JSON answer over 16 MiB is a clean tool error, and the next call works", async () => {
    const gw = gatewayFor(upstream.url);
    const r = await gw.callTool("tickets", withEveryTool("alice"), { name: "big" });
    expect(r).toEqual({
      isError: true,
      content: [{ type: "text", text: "the upstream MCP server sent a message over 16 MiB; it was stopped" }],
    });
    expect(textOf(await gw.callTool("tickets", withEveryTool("alice"), { name: "my_tickets" }))).toBe(
      ticketsOf(`Bearer ${TOKEN}`),
    );
  });

  it("an SSE event that never ends is cut at 16 MiB, well before the call's timeout", async () => {
    const endless = await recorder((req, res) => {
      if (req.method === "GET") {
        req.resume();
        res.writeHead(405).end();
        return;
      }
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const msg = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        if (msg.id === undefined) {
          res.writeHead(202).end();
        } else if (msg.method === "initialize") {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(
            JSON.stringify({
              jsonrpc: "2.0",
              id: msg.id,
              result: {
                protocolVersion: msg.params.protocolVersion,
                capabilities: { tools: {} },
                serverInfo: { name: "e", version: "1" },
              },
            }),
          );
        } else {
          res.writeHead(200, { "content-type": "text/event-stream" });
          res.write(
            `data: {"jsonrpc":"2.0","id":${JSON.stringify(msg.id)},"result":{"content":[{"type":"text","text":"`,
          );
          const chunk = Buffer.alloc(1024 * 1024, "x");
          const pump = () => {
            while (!res.destroyed && res.write(chunk)) {}
            if (!res.destroyed) res.once("drain", pump);
          };
          res.on("close", () => res.removeAllListeners("drain"));
          pump();
        }
      });
    });
    servers.push(endless);
    const r = await gatewayFor(`${endless.url}/mcp`, 60_000).callTool("tickets", withEveryTool("alice"), {
      name: "anything",
    });
    expect(textOf(r)).toBe("the upstream MCP server sent a message over 16 MiB; it was stopped");
  });
});
