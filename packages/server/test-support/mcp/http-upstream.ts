import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";

/** What the fake ticket service answers for a bearer value: derived from it, never it. */
export const ticketsOf = (authorization: string): string =>
  `tickets-${createHash("sha256").update(authorization).digest("hex").slice(0, 12)}`;

export interface HttpUpstream {
  url: string;
  /** Authorization headers it received, in order. */
  seen: string[];
  close(): Promise<void>;
}

/**
 * A stateless Streamable HTTP MCP server whose tools answer from the Authorization header; JSON
 * answers, or event streams with `sse` (the only way its progress notifications reach a client).
 */
export async function startHttpUpstream(opts: { sse?: boolean } = {}): Promise<HttpUpstream> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    const auth = String(req.headers.authorization ?? "");
    seen.push(auth);
    const mcp = new McpServer({ name: "tickets", version: "1.0.0" });
    mcp.tool("my_tickets", "tickets of the caller", {}, async () => ({
      content: [{ type: "text", text: auth ? ticketsOf(auth) : "anonymous" }],
    }));
    mcp.tool("echo_auth", "echoes the Authorization header", {}, async () => ({
      content: [{ type: "text", text: `you sent ${auth}` }],
    }));
    mcp.tool("big", "answers 17 MiB of text", {}, async () => ({
      content: [{ type: "text", text: "x".repeat(17 * 1024 * 1024) }],
    }));
    mcp.tool("progress_tickets", "reports progress (quoting the header), then answers", {}, async (_args, extra) => {
      const progressToken = extra._meta?.progressToken;
      if (progressToken !== undefined) {
        for (const [progress, message] of [
          [1, "looking up"],
          [2, `as ${auth}`],
        ] as const) {
          await extra.sendNotification({
            method: "notifications/progress",
            params: { progressToken, progress, message },
          });
        }
      }
      return { content: [{ type: "text", text: auth ? ticketsOf(auth) : "anonymous" }] };
    });
    const transport = new StreamableHTTPServerTransport({ enableJsonResponse: !opts.sse });
    res.on("close", () => {
      void transport.close();
      void mcp.close();
    });
    void mcp.connect(transport).then(() => transport.handleRequest(req, res));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    seen,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
