import http from "node:http";
import type { AddressInfo } from "node:net";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryCredentials, textOf } from "../../test-support/mcp/fixtures.js";
import { recordingAudit } from "../../test-support/recording-audit.js";
import { createMcpGateway, type McpGateway } from "./mcp-gateway.js";
import { withEveryTool } from "./mcp-tool-access.js";
import { resolveUpstream } from "./mcp-upstream-spec.js";

// A tool written in another language hands back the user's credential escaped by its own encoder
// (Go's encoding/json, Python's urllib, an HTML template): the model could decode every one of
// them, so the gateway must redact every one (issue 11, finding 4). The forms are written from
// the encoders' rules here, independently of the redactor.
const TOKEN = `tkt&live<2026>/"q'+x=y~z`;

const hex = (c: string) => c.charCodeAt(0).toString(16);
const FORMS: Record<string, string> = {
  goJson: JSON.stringify(TOKEN)
    .slice(1, -1)
    .replace(/[&<>]/g, (c) => `\\u00${hex(c)}`),
  jsonEveryUnitUpper: [...TOKEN].map((c) => `\\u${hex(c).padStart(4, "0").toUpperCase()}`).join(""),
  pythonQuote: TOKEN.replace(/[^A-Za-z0-9_.~/-]/g, (c) => `%${hex(c).toUpperCase()}`),
  pythonQuotePlusLower: TOKEN.replace(/[^A-Za-z0-9_.~-]/g, (c) => `%${hex(c)}`),
  htmlNamed: TOKEN.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string,
  ),
  htmlHex: [...TOKEN].map((c) => (/[A-Za-z0-9]/.test(c) ? c : `&#x${hex(c).padStart(4, "0")};`)).join(""),
};

/** A Streamable HTTP MCP server whose `escaped` tool answers with its X-Api-Key in every form. */
async function escapingUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const key = String(req.headers["x-api-key"] ?? "");
    const forms = FORMS_OF(key);
    const mcp = new McpServer({ name: "escaping", version: "1.0.0" });
    mcp.tool("escaped", "its key as other languages escape it", {}, async () => ({
      content: Object.entries(forms).map(([name, form]) => ({ type: "text" as const, text: `${name}=${form};` })),
      structuredContent: { forms },
    }));
    const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true });
    res.on("close", () => {
      void transport.close();
      void mcp.close();
    });
    void mcp.connect(transport).then(() => transport.handleRequest(req, res));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
/** The forms of what the upstream received (the test checks it received TOKEN). */
const FORMS_OF = (key: string): Record<string, string> => (key === TOKEN ? FORMS : { received: key });

describe("MCP gateway: a credential escaped by another language's encoder is redacted", () => {
  let upstream: Awaited<ReturnType<typeof escapingUpstream>>;
  let gateway: McpGateway;
  beforeAll(async () => {
    upstream = await escapingUpstream();
    const credentials = memoryCredentials();
    credentials.set("alice", "tok", TOKEN);
    gateway = createMcpGateway({
      servers: new Map([
        [
          "escaping",
          resolveUpstream(
            "escaping",
            { url: upstream.url, headers_from_user_credentials: { "X-Api-Key": "{tok}" } },
            "/tmp",
          ),
        ],
      ]),
      credentials,
      audit: recordingAudit(),
      toolTimeoutMs: 20_000,
      startTimeoutMs: 20_000,
      maxProcesses: 5,
      idleTimeoutMs: 60_000,
    });
  });
  afterAll(async () => {
    await gateway?.close();
    await upstream?.close();
  });

  it("in text items and in structuredContent", async () => {
    const r = await gateway.callTool("escaping", withEveryTool("alice"), { name: "escaped" });
    // Each form was sent (the upstream got the real value), and none came back.
    expect(textOf(r)).toBe(
      Object.keys(FORMS)
        .map((name) => `${name}=[redacted];`)
        .join(""),
    );
    expect(r.structuredContent).toEqual({
      forms: Object.fromEntries(Object.keys(FORMS).map((n) => [n, "[redacted]"])),
    });
    for (const form of Object.values(FORMS)) expect(JSON.stringify(r)).not.toContain(form);
  });
});
