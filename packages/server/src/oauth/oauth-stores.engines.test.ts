import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { testEngines } from "../../test-support/databases.js";
import type { Db } from "../store/db.js";
import {
  type AuthorizationCodeRow,
  type AuthorizationRequestRow,
  createAuthorizationStore,
} from "./authorization-store.js";
import { createOAuthClientsStore, type OAuthClientRow } from "./oauth-clients-store.js";

// Migration 13's tables through their stores, on SQLite and PostgreSQL alike: the bounds, the
// single-use takes of a request and a code, and the purge.

const client = (id: string, t = 1000): OAuthClientRow => ({
  id,
  secret_hash: id.endsWith("c") ? "h1:abc" : null,
  name: `client ${id}`,
  redirect_uris: ["http://127.0.0.1:1234/cb", "https://app.example.com/cb"],
  auth_method: id.endsWith("c") ? "client_secret_basic" : "none",
  grant_types: ["authorization_code", "refresh_token"],
  created_at: t,
  last_used_at: t,
});

const request = (state: string, expiresAt = 10_000): AuthorizationRequestRow => ({
  state_hash: state,
  browser_hash: "h1:browser",
  client_id: "oac_a",
  redirect_uri: "http://127.0.0.1:1234/cb",
  client_state: "st",
  code_challenge: "c".repeat(43),
  resource: "http://kw/mcp/cloud",
  scope: null,
  nonce: "n",
  provider_verifier: "v",
  user_id: null,
  granted_scope: null,
  consent_hash: null,
  created_at: 1000,
  expires_at: expiresAt,
});

const code = (hash: string, expiresAt = 10_000): AuthorizationCodeRow => ({
  hash,
  client_id: "oac_a",
  redirect_uri: "http://127.0.0.1:1234/cb",
  code_challenge: "c".repeat(43),
  resource: "http://kw/mcp/cloud",
  scope: "mcp:cloud",
  user_id: "user:alice",
  created_at: 1000,
  expires_at: expiresAt,
  used_at: null,
  jti: null,
  jti_expires_at: null,
  family: null,
});

for (const engine of testEngines) {
  describe.skipIf(engine.skip !== undefined)(`oauth stores on ${engine.name}`, () => {
    let db: Db;
    beforeEach(async () => {
      db = await engine.open();
    });
    afterEach(() => db.close());

    it("clients: inserted up to the cap (concurrent inserts included), read back field by field", async () => {
      const clients = createOAuthClientsStore(db);
      const results = await Promise.all(
        ["oac_a", "oac_bc", "oac_d", "oac_e"].map((id) => clients.insertWithin(client(id), 3)),
      );
      expect(results.filter(Boolean)).toHaveLength(3);
      expect(await clients.count()).toBe(3);
      const inserted = ["oac_a", "oac_bc", "oac_d", "oac_e"].filter((_, i) => results[i]);
      const row = await clients.get(inserted[0] as string);
      expect(row).toEqual(client(inserted[0] as string));
      await clients.touch(inserted[0] as string, 5000);
      expect((await clients.get(inserted[0] as string))?.last_used_at).toBe(5000);
      expect(await clients.remove(db, inserted[0] as string)).toBe(true);
      expect(await clients.get(inserted[0] as string)).toBeUndefined();
      expect(await clients.insertWithin(client("oac_f"), 3)).toBe(true);
    });

    it("requests: the cap holds for concurrent sign-ins (no two pass on one free place)", async () => {
      const store = createAuthorizationStore(db);
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => store.insertRequest(request(`c${i}`), 5, 2000)),
      );
      expect(results.filter(Boolean)).toHaveLength(5);
      expect(await store.insertRequest(request("late"), 5, 2000)).toBe(false);
    });

    it("requests: bounded among live ones, taken by state once, then by consent once", async () => {
      const store = createAuthorizationStore(db);
      expect(await store.insertRequest(request("s1"), 2, 2000)).toBe(true);
      expect(await store.insertRequest(request("s2", 1500), 2, 2000)).toBe(true); // already expired at 2000
      expect(await store.insertRequest(request("s3"), 2, 2000)).toBe(true);
      expect(await store.insertRequest(request("s4"), 2, 2000)).toBe(false);
      const taken = await Promise.all([store.takeByState("s1", 2000), store.takeByState("s1", 2000)]);
      expect(taken.filter((r) => r !== undefined)).toHaveLength(1);
      expect(await store.takeByState("s2", 2000)).toBeUndefined(); // expired: gone, not returned
      const row = taken.find((r) => r !== undefined) as AuthorizationRequestRow;
      expect(row).toEqual(request("s1"));
      await store.insertConsent({ ...row, user_id: "user:alice", granted_scope: "mcp:cloud", consent_hash: "c1" });
      expect(await store.takeByState("s1", 2000)).toBeUndefined(); // awaiting consent: not a pending sign-in
      expect((await store.peekConsent("c1"))?.user_id).toBe("user:alice");
      const answers = await Promise.all([store.takeByConsent("c1", 2000), store.takeByConsent("c1", 2000)]);
      expect(answers.filter((r) => r !== undefined)).toHaveLength(1);
    });

    it("codes: spent once, what was issued recorded, purged a day after expiry", async () => {
      const store = createAuthorizationStore(db);
      await store.insertCode(code("k1", 5000));
      const spent = await Promise.all([store.spendCode("k1", 3000), store.spendCode("k1", 3000)]);
      expect(spent.sort()).toEqual([false, true]);
      await store.recordIssued("k1", { jti: "j1", expiresAt: 9000, family: "f1" });
      expect(await store.getCode("k1")).toMatchObject({ used_at: 3000, jti: "j1", jti_expires_at: 9000, family: "f1" });
      await store.insertRequest(request("old", 4000), 10, 1000);
      await store.purge(5000 + 86_400_000 - 1);
      expect(await store.getCode("k1")).toBeDefined();
      expect(await store.counts()).toEqual({ requests: 0, codes: 1 });
      await store.purge(5000 + 86_400_000);
      expect(await store.getCode("k1")).toBeUndefined();
    });
  });
}
