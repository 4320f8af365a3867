// A stdio MCP server for the gateway's tests: tools that show a credential's effect, leak it in
// every way a careless tool could, hang, crash, or speak garbage. Reads its secret from CLOUD_KEY.
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

if (process.env.SPLIT_WRITES === "1") {
  // Every message leaves in two writes, the second a tick later: the reader must reassemble.
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk, ...rest) => {
    const s = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    const mid = Math.floor(s.length / 2);
    write(s.slice(0, mid));
    setTimeout(() => write(s.slice(mid), ...rest), 5);
    return true;
  };
}

const secret = () => process.env.CLOUD_KEY ?? "";
const text = (t) => ({ content: [{ type: "text", text: t }] });
/** What a fake cloud answers for this access key: derived from it, never the key. */
const accountOf = (key) => `acct-${createHash("sha256").update(key).digest("hex").slice(0, 12)}`;

const server = new McpServer({ name: "test-tools", version: "1.0.0" });
server.tool("whoami", "the cloud account of the configured key", {}, async () =>
  text(secret() ? `functions of ${accountOf(secret())}: fn-a, fn-b` : "no key"),
);
server.tool(
  "echo_args",
  "echoes its arguments",
  { user_id: z.string().optional(), name: z.string().optional() },
  async (args) => text(JSON.stringify(args)),
);
server.tool("print_env", "prints its environment", {}, async () => text(JSON.stringify(process.env)));
server.tool("print_env_b64", "prints its environment, base64", {}, async () =>
  text(Buffer.from(JSON.stringify(process.env)).toString("base64")),
);
server.tool("print_env_b64_wrapped", "prints its environment as `env | base64` would: wrapped at 76", {}, async () =>
  text(
    Buffer.from(
      Object.entries(process.env)
        .map(([k, v]) => `${k}=${v}\n`)
        .join(""),
    )
      .toString("base64")
      .replace(/.{76}/g, "$&\n"),
  ),
);
server.tool("print_env_encoded", "the key hex- and URL-encoded", {}, async () =>
  text(
    `hex=${Buffer.from(secret()).toString("hex")} url=${encodeURIComponent(secret())} b64url=${Buffer.from(secret()).toString("base64url")}`,
  ),
);
server.tool("split_secret", "the key across two text items", {}, async () => {
  const s = secret();
  const mid = Math.floor(s.length / 2);
  return {
    content: [
      { type: "text", text: `key: ${s.slice(0, mid)}` },
      { type: "text", text: `${s.slice(mid)} end` },
    ],
  };
});
server.registerTool(
  "structured",
  {
    description: "the key in structured content and resources",
    outputSchema: { key: z.string(), nested: z.record(z.string(), z.number()) },
  },
  async () => ({
    content: [
      { type: "text", text: JSON.stringify({ key: secret() }) },
      {
        type: "resource",
        resource: { uri: "file:///key.txt", mimeType: "text/plain", text: `the key is ${secret()}` },
      },
      {
        type: "resource",
        resource: {
          uri: "file:///key.bin",
          mimeType: "application/octet-stream",
          blob: Buffer.from(`bytes ${secret()} bytes`).toString("base64"),
        },
      },
    ],
    structuredContent: { key: secret(), nested: { [secret()]: 1 } },
  }),
);
server.tool("media", "the key inside image and audio bytes, and in a resource link", {}, async () => {
  // Line-wrapped base64 (as `base64` and MIME write it) decodes the same for a client.
  const wrapped = Buffer.from(`PNG ${secret()} IEND`).toString("base64").replace(/.{4}/g, "$&\n");
  return {
    content: [
      { type: "image", data: wrapped, mimeType: "image/png" },
      { type: "audio", data: Buffer.from(`RIFF.${secret()}`).toString("base64"), mimeType: "audio/wav" },
      {
        type: "resource_link",
        uri: `https://cloud.example/keys/${encodeURIComponent(secret())}`,
        name: `key ${secret()}`,
        description: `the link for ${secret()}`,
        _meta: { key: secret() },
      },
    ],
  };
});
server.tool("keyed", `a tool whose description quotes its key: ${secret()}`, {}, async () => text("ok"));
server.tool("huge_line", "writes 17 MiB on stdout with no line end", {}, async () => {
  process.stdout.write("x".repeat(17 * 1024 * 1024));
  return new Promise(() => {});
});
server.tool("throw_secret", "fails with the key in its error", {}, async () => {
  throw new Error(`request failed for key ${secret()}`);
});
server.tool("pid", "its process id", {}, async () => text(String(process.pid)));
server.tool("slow", "answers after ms", { ms: z.number() }, async ({ ms }) => {
  await new Promise((r) => setTimeout(r, ms));
  return text(`${accountOf(secret())} ${process.pid}`);
});
/** Reports progress with the caller's token, as an MCP server should (none asked → none sent). */
const reportProgress = (extra, progress, total, message) => {
  const progressToken = extra._meta?.progressToken;
  if (progressToken === undefined) return Promise.resolve();
  const params = { progressToken, progress, ...(total !== undefined ? { total } : {}) };
  return extra.sendNotification({
    method: "notifications/progress",
    params: message === undefined ? params : { ...params, message },
  });
};
server.tool(
  "slow_progress",
  "reports `steps` progress updates (leaking its key in two), then answers",
  { steps: z.number() },
  async ({ steps }, extra) => {
    const messages = [
      `working for ${accountOf(secret())}`,
      `using key ${secret()}`,
      `key b64 ${Buffer.from(secret()).toString("base64")}`,
    ];
    // A notification for a token the gateway never gave: it must go nowhere.
    await extra.sendNotification({
      method: "notifications/progress",
      params: { progressToken: "not-yours", progress: 99, message: `stray ${accountOf(secret())}` },
    });
    for (let i = 1; i <= steps; i++) await reportProgress(extra, i, steps, messages[(i - 1) % messages.length]);
    return text(`done for ${accountOf(secret())}`);
  },
);
server.tool(
  "progress_flood",
  "reports `count` progress updates as fast as it can, then answers",
  { count: z.number() },
  async ({ count }, extra) => {
    for (let i = 1; i < count; i++) void reportProgress(extra, i, count, `step ${i}`);
    await reportProgress(extra, count, count, "last");
    return text(`flooded ${count}`);
  },
);
server.tool(
  "progress_until_cancelled",
  "reports (once, or every `every_ms`) until cancelled, then writes `marker`",
  { marker: z.string().optional(), every_ms: z.number().optional() },
  async ({ marker, every_ms }, extra) => {
    let n = 1;
    await reportProgress(extra, n, undefined, "started");
    const ticker = every_ms
      ? setInterval(() => void reportProgress(extra, ++n, undefined, "still going"), every_ms)
      : undefined;
    await new Promise((resolve) => extra.signal.addEventListener("abort", resolve, { once: true }));
    clearInterval(ticker);
    if (marker) writeFileSync(marker, "cancelled");
    return text("cancelled");
  },
);
server.tool("hang", "never answers", {}, () => new Promise(() => {}));
server.tool("crash", "exits mid-call", {}, async () => {
  process.exit(3);
});
server.tool("garbage", "writes a non-MCP line to stdout", {}, async () => {
  process.stdout.write("Traceback (most recent call last): not json\n");
  return new Promise(() => {});
});

await server.connect(new StdioServerTransport());
