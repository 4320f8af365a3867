import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { TestServer } from "../../test-support/server.js";
import { startTestServerAt } from "../../test-support/server-at.js";
import { readJson, type TokenEndpointBody } from "../../test-support/wire.js";

/**
 * Master-key rotation through the running server (what `keyward master-key rotate` calls) covers
 * user credentials: they are counted, rewrapped, and still served under the new key alone.
 */

const OLD_KEY = randomBytes(32).toString("base64");
const NEW_KEY = randomBytes(32).toString("base64");
const dataDir = mkdtempSync(join(tmpdir(), "keyward-users-mk-"));
let kw: TestServer | undefined;

afterAll(async () => {
  await kw?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function fetchValue(server: TestServer, agentKey: string, userKey: string): Promise<unknown> {
  const token = await readJson<TokenEndpointBody>(
    await fetch(`${server.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: userKey, audience: "tools" }),
    }),
  );
  const res = await fetch(`${server.url}/v1/tools/credentials`, {
    method: "POST",
    headers: { authorization: `Bearer ${agentKey}`, "content-type": "application/json" },
    body: JSON.stringify({ user_token: token.access_token, names: ["cloud_ak"] }),
  });
  return res.json();
}

describe("master-key rotation", () => {
  it("rewraps user credentials with everything else", async () => {
    kw = await startTestServerAt(dataDir, { KEYWARD_MASTER_KEY: OLD_KEY });
    await kw.admin("POST", "/agents", { name: "tools", upstream: "http://127.0.0.1:9" });
    await kw.admin("PUT", "/agents/tools/grants", { credentials: [], user_credentials: ["cloud_ak"] });
    const agentKey = (await kw.admin("POST", "/keys", { owner: "agent:tools", scopes: [] })).body.secret;
    const userKey = (await kw.admin("POST", "/keys", { owner: "user:alice", scopes: ["agent:tools"] })).body.secret;
    for (const user of ["alice", "bob", "carol"]) {
      expect((await kw.admin("PUT", `/users/${user}/credentials/cloud_ak`, { value: `AK-${user}` })).status).toBe(201);
    }
    const before = await kw.admin("GET", "/master-key");
    await kw.close();

    kw = await startTestServerAt(dataDir, { KEYWARD_MASTER_KEY: NEW_KEY, KEYWARD_MASTER_KEY_PREVIOUS: OLD_KEY });
    const rotated = await kw.admin("POST", "/master-key/rotate", {});
    expect(rotated.status).toBe(200);
    expect(rotated.body).toMatchObject({ failed: [], remaining: 0 });
    // Every sealed value the old key held was rewrapped, the three user credentials among them.
    const oldCount = before.body.keys.find((k: { active: boolean }) => k.active).values as number;
    expect(rotated.body.rewrapped).toBe(oldCount);
    expect(oldCount).toBeGreaterThanOrEqual(3 + 1); // + the signing key
    await kw.close();

    kw = await startTestServerAt(dataDir, { KEYWARD_MASTER_KEY: NEW_KEY });
    expect(await fetchValue(kw, agentKey, userKey)).toEqual({ credentials: { cloud_ak: "AK-alice" } });
  });
});
