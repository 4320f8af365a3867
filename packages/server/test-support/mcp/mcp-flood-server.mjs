// A stdio "MCP server" that answers initialize, then stops reading its input and floods the client
// with ping requests: every answer the client writes back piles up on the client's side.
import { createInterface } from "node:readline";

const lines = createInterface({ input: process.stdin });
lines.once("line", (line) => {
  const { id } = JSON.parse(line);
  const info = {
    protocolVersion: "2025-06-18",
    capabilities: { tools: {} },
    serverInfo: { name: "flood", version: "1" },
  };
  process.stdout.write(`${JSON.stringify({ jsonrpc: "2.0", id, result: info })}\n`);
  lines.close();
  process.stdin.pause();
  let n = 0;
  const burst = () => {
    let out = "";
    for (let i = 0; i < 1000; i++) out += `${JSON.stringify({ jsonrpc: "2.0", id: `p${n++}`, method: "ping" })}\n`;
    process.stdout.write(out, () => setImmediate(burst));
  };
  burst();
});
