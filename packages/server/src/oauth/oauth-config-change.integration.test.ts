import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, setGlobalDispatcher } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authorizeAs, postForm, redeem, startOAuthStack } from "../../test-support/mcp-oauth.js";
import { type OidcProvider, startOidcProvider } from "../../test-support/oidc-provider.js";

// A refresh is judged by the configuration of now, not of the sign-in: Keyward restarted on the
// same store with the user's scopes (trusted_issuers[].scopes) changed.

let dataDir: string;
let idp: OidcProvider;
let env: Record<string, string>;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "kw-oauth-restart-"));
  idp = await startOidcProvider();
  // One address for both runs: the resource a token is bound to is built from it.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  env = { KEYWARD_PORT: String(port) };
});
/**
 * Stops a run. fetch keeps connections to the address, which the next run listens on again: a
 * kept one would meet the closed server, so the pool is dropped with it.
 */
async function stop(stack: { close(): Promise<void> }): Promise<void> {
  await stack.close();
  setGlobalDispatcher(new Agent());
}

afterAll(async () => {
  await idp?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("refresh after a configuration change", () => {
  it("keeps refreshing while the user may still hold the scopes, and stops once they are taken away", async () => {
    const before = await startOAuthStack({ dataDir, idp, env, scopes: ["mcp:cloud"] });
    const { client, verifier, code } = await authorizeAs(before, "alice");
    const first = await redeem(before, code as string, client.client_id, verifier);
    expect(first.status).toBe(200);
    await stop(before);

    const refresh = (url: string, token: string) =>
      postForm(`${url}/oauth/token`, {
        grant_type: "refresh_token",
        refresh_token: token,
        client_id: client.client_id,
      });

    // Still granted (now through mcp:*): the token refreshes, still bound to cloud.
    const same = await startOAuthStack({ dataDir, idp, env, scopes: ["mcp:*"] });
    const second = await refresh(same.kw.url, first.body.refresh_token);
    expect(second.status).toBe(200);
    expect(second.body.scope).toBe("mcp:cloud");
    await stop(same);

    // The user may now use another server only: cloud's refresh is refused, and the token survives
    // the refusal (a later configuration may grant it again).
    const narrowed = await startOAuthStack({ dataDir, idp, env, scopes: ["mcp:garbage"] });
    const refused = await refresh(narrowed.kw.url, second.body.refresh_token);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe("invalid_scope");
    await stop(narrowed);
  });
});
