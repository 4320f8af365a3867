import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accountOf, textOf } from "../../test-support/mcp/fixtures.js";
import { ALICE_CLOUD_KEY, type OAuthStack, startOAuthStack } from "../../test-support/mcp-oauth.js";
import { SignInAsProvider } from "../../test-support/mcp-sdk-oauth-provider.js";

/**
 * SPEC §12 per-tool scopes through a real MCP client's sign-in: the identity provider's users may
 * call one tool of `cloud` only. The official SDK client, knowing only the URL, reads the
 * protected resource metadata (no `scopes_supported`), so it asks for no scope; Keyward grants what
 * the user may have there, `mcp:cloud:whoami`, and the client sees and calls that tool only.
 */
let stack: OAuthStack;
beforeAll(async () => {
  stack = await startOAuthStack({ scopes: ["mcp:cloud:whoami"] });
});
afterAll(async () => stack?.close());

describe("a user granted one tool, through the MCP SDK's OAuth flow", () => {
  it("signs in, gets a token for that tool, lists and calls it, and is refused another", async () => {
    const provider = new SignInAsProvider("alice");
    const url = new URL(stack.resource("cloud"));
    const first = new Client({ name: "per-tool", version: "1.0.0" });
    await expect(first.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }))).rejects.toThrow(
      UnauthorizedError,
    );
    const asked = provider.authorizationUrls[0] as URL;
    expect(asked.searchParams.get("resource")).toBe(stack.resource("cloud"));
    // Were `mcp:cloud` listed in the metadata, the SDK would ask for it and be refused (invalid_scope).
    expect(asked.searchParams.get("scope")).toBeNull();
    expect(provider.code).toBeDefined();

    await new StreamableHTTPClientTransport(url, { authProvider: provider }).finishAuth(provider.code as string);
    const claims = decodeJwt(provider.saved?.access_token as string);
    expect(claims).toMatchObject({ aud: stack.resource("cloud"), scope: "mcp:cloud:whoami", sub: "user:alice" });

    const client = new Client({ name: "per-tool", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["whoami"]);
      expect(textOf(await client.callTool({ name: "whoami", arguments: {} }))).toContain(accountOf(ALICE_CLOUD_KEY));
      const refused = await client.callTool({ name: "print_env", arguments: {} });
      expect(refused.isError).toBe(true);
      expect(textOf(refused)).toContain("mcp:cloud:print_env");
      expect(textOf(refused)).not.toContain(ALICE_CLOUD_KEY);
    } finally {
      await client.close();
    }
  });
});
