import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runAgentToExit } from "../../packages/server/test-support/agent-process.js";

/**
 * The example as a user runs it: `node examples/mcp-oauth/client.mjs` starts the local IdP, the
 * fake cloud and `keyward serve`, and an MCP SDK client that knows only `/mcp/cloud` signs alice
 * in (registration, PKCE, consent) and calls the tool with her cloud account, whose key it never sees.
 */
describe("mcp-oauth example: an MCP client that knows only the URL signs in and calls a tool", () => {
  it("runs client.mjs end to end", async () => {
    const run = await runAgentToExit(join(import.meta.dirname, "client.mjs"), {});
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.split("\n");
    expect(lines[0]).toMatch(/^MCP endpoint http:\/\/127\.0\.0\.1:\d+\/mcp\/cloud \(nothing else is configured/);
    expect(run.stdout).toContain('Keyward asks "Allow access to MCP server cloud?" -> Approve');
    expect(run.stdout).toMatch(
      /signed in: registered as oac_[0-9A-Za-z]{22}, token for \S+\/mcp\/cloud \(scope mcp:cloud\)/,
    );
    expect(run.stdout).toContain("tools: list_functions");
    const call = lines.find((l) => l.startsWith("list_functions -> ")) as string;
    const result = JSON.parse(call.slice("list_functions -> ".length));
    expect(result).toMatchObject({ account: "alice", functions: ["alice-etl", "alice-report"] });
    expect(result.debug.access_key).toBe("[redacted]");
    expect(run.stdout).not.toMatch(/LTAI[0-9A-Za-z]{20}/);
  });
});
