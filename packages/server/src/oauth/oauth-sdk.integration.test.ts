import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { OAuthTokens } from "@modelcontextprotocol/sdk/shared/auth.js";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accountOf, textOf } from "../../test-support/mcp/fixtures.js";
import { ALICE_CLOUD_KEY, type OAuthStack, startOAuthStack } from "../../test-support/mcp-oauth.js";
import { SignInAsProvider } from "../../test-support/mcp-sdk-oauth-provider.js";

let stack: OAuthStack;

beforeAll(async () => {
  stack = await startOAuthStack();
});
afterAll(async () => {
  await stack?.close();
});

describe("the official MCP TypeScript SDK client, knowing only the URL /mcp/cloud", () => {
  it("discovers from the 401, registers, signs in with PKCE, calls a tool, and refreshes", async () => {
    const provider = new SignInAsProvider("alice");
    const url = new URL(stack.resource());
    const first = new Client({ name: "sdk-oauth-test", version: "1.0.0" });
    // The first connection meets the 401: the SDK discovers, registers and sends the user to sign in.
    await expect(first.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }))).rejects.toThrow(
      UnauthorizedError,
    );
    expect(provider.client?.client_id).toMatch(/^oac_/);
    const asked = provider.authorizationUrls[0] as URL;
    expect(asked.origin + asked.pathname).toBe(`${stack.kw.url}/oauth/authorize`);
    expect(asked.searchParams.get("code_challenge_method")).toBe("S256");
    expect(asked.searchParams.get("resource")).toBe(stack.resource());
    expect(provider.code).toMatch(/^[0-9A-Za-z]{43}$/);

    // The application hands the code to the transport, which redeems it.
    const finishing = new StreamableHTTPClientTransport(url, { authProvider: provider });
    await finishing.finishAuth(provider.code as string);
    expect(provider.saved?.refresh_token).toMatch(/^kwr_/);
    expect(decodeJwt(provider.saved?.access_token as string).aud).toBe(stack.resource());

    const client = new Client({ name: "sdk-oauth-test", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toContain("whoami");
      const result = await client.callTool({ name: "whoami", arguments: {} });
      expect(textOf(result)).toContain(accountOf(ALICE_CLOUD_KEY));
    } finally {
      await client.close();
    }

    // The access token stops working (here: replaced by one that never did); the next call meets
    // a 401, and the SDK refreshes with its refresh token instead of sending the user again.
    const before = provider.saved as OAuthTokens;
    provider.saved = { ...before, access_token: "expired.access.token" };
    const again = new Client({ name: "sdk-oauth-test", version: "1.0.0" });
    await again.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
    try {
      const result = await again.callTool({ name: "whoami", arguments: {} });
      expect(textOf(result)).toContain(accountOf(ALICE_CLOUD_KEY));
    } finally {
      await again.close();
    }
    expect(provider.authorizationUrls).toHaveLength(1);
    expect(provider.saved?.refresh_token).toMatch(/^kwr_/);
    expect(provider.saved?.refresh_token).not.toBe(before.refresh_token);
    expect(provider.saved?.access_token).not.toBe(before.access_token);
  });
});
