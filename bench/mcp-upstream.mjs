// The MCP upstream of the MCP benchmark: a trivial tool, `echo` ({text} → the same text), so what
// is timed is the path to it, not the tool; and `big`, 1 MiB of output with the SECRET_0…9
// values of its environment in it (what the gateway has to redact).
//   node bench/mcp-upstream.mjs --stdio    MCP over stdin/stdout
//   node bench/mcp-upstream.mjs --http     Streamable HTTP on 127.0.0.1 (port 0 = any), prints `listening <port>`
// With ECHO_TOKEN set, the HTTP server answers 401 unless `Authorization: Bearer <ECHO_TOKEN>`
// (the gateway's injected header is then really there); over stdio the variable is only read.
import { randomUUID } from "node:crypto";
import http from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod";

/** 1 MiB of log-like lines with each of SECRET_0…SECRET_9 (those set) in it, raw, base64 and hex. */
function bigOutput() {
  const secrets = Array.from({ length: 10 }, (_, i) => process.env[`SECRET_${i}`]).filter(Boolean);
  const lines = [];
  let size = 0;
  for (let i = 0; size < 1 << 20; i++) {
    const secret = secrets.length > 0 && i % 500 === 0 ? secrets[(i / 500) % secrets.length] : undefined;
    const forms = secret ? [secret, Buffer.from(secret).toString("base64"), Buffer.from(secret).toString("hex")] : [];
    const line = `${i} INFO request served in ${i % 97} ms ${secret ? `token=${forms[i % 3]}` : "ok"}\n`;
    lines.push(line);
    size += line.length;
  }
  return lines.join("").slice(0, 1 << 20);
}

function echoServer() {
  const server = new McpServer({ name: "bench-echo", version: "0.1.0" });
  server.registerTool(
    "echo",
    { description: "Answers with its input", inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: "text", text }] }),
  );
  // Built once: what is timed is carrying and redacting the output, not making it.
  let big;
  server.registerTool("big", { description: "1 MiB of output holding the SECRET_* values" }, async () => {
    big ??= bigOutput();
    return { content: [{ type: "text", text: big }] };
  });
  return server;
}

async function serveHttp(port) {
  const token = process.env.ECHO_TOKEN;
  // Stateful sessions (one transport per client session), answers as JSON rather than SSE.
  const sessions = new Map();
  const httpServer = http.createServer(async (req, res) => {
    if (new URL(req.url ?? "/", "http://x").pathname !== "/mcp") return end(res, 404, "not found");
    if (token && req.headers.authorization !== `Bearer ${token}`) return end(res, 401, "unauthorized");
    const sid = req.headers["mcp-session-id"];
    let transport = typeof sid === "string" ? sessions.get(sid) : undefined;
    if (!transport) {
      if (sid) return end(res, 404, "unknown session");
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: true,
        onsessioninitialized: (id) => sessions.set(id, transport),
      });
      transport.onclose = () => sessions.delete(transport.sessionId);
      await echoServer().connect(transport);
    }
    await transport.handleRequest(req, res);
  });
  httpServer.keepAliveTimeout = 60_000;
  await new Promise((resolve) => httpServer.listen(port, "127.0.0.1", resolve));
  process.stdout.write(`listening ${httpServer.address().port}\n`);
}

function end(res, status, text) {
  res.writeHead(status, { "content-type": "text/plain" }).end(text);
}

if (process.argv.includes("--http")) await serveHttp(Number(process.env.PORT ?? 0));
else await echoServer().connect(new StdioServerTransport());
