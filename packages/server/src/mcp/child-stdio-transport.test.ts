import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterEach, describe, expect, it } from "vitest";
import { FLOOD_SERVER, TOOLS_SERVER } from "../../test-support/mcp/fixtures.js";
import { ChildStdioTransport } from "./child-stdio-transport.js";

let transport: ChildStdioTransport | undefined;
afterEach(() => {
  transport?.kill();
  transport = undefined;
});

/** Connects the SDK client to a real child, and resolves when the child is gone. */
async function connect(script: string, limits: { maxLineBytes?: number; maxBacklogBytes?: number }) {
  transport = new ChildStdioTransport({
    command: process.execPath,
    args: [script],
    env: { PATH: process.env.PATH ?? "", CLOUD_KEY: "AKIA-child-0001" },
    cwd: process.cwd(),
    ...limits,
  });
  const client = new Client({ name: "t", version: "1" }, { capabilities: {} });
  client.onerror = () => {};
  const gone = new Promise<void>((resolve) => {
    client.onclose = () => resolve();
  });
  await client.connect(transport, { timeout: 20_000 });
  return { client, gone, transport };
}

describe("child stdio transport limits", () => {
  it("a child that stops reading while it floods us with requests is stopped, not buffered for", async () => {
    const { gone, transport: t } = await connect(FLOOD_SERVER, { maxBacklogBytes: 256 * 1024 });
    await gone;
    expect(t.fault).toBe("stalled");
  });

  it("a stdout line over the cap stops the child as oversized, failing the call in flight at once", async () => {
    const { client, transport: t } = await connect(TOOLS_SERVER, { maxLineBytes: 1024 * 1024 });
    await expect(client.callTool({ name: "huge_line", arguments: {} }, undefined, { timeout: 20_000 })).rejects.toThrow(
      /Connection closed/,
    );
    expect(t.fault).toBe("oversized");
  });
});
