import { afterEach, describe, expect, it } from "vitest";
import { type Place, placeEngines } from "../../test-support/database-places.js";
import { TEST_MASTER_KEY, type TestServer } from "../../test-support/server.js";
import { readJson, type TokenEndpointBody } from "../../test-support/wire.js";
import { systemClock } from "../clock.js";
import { openIntegrity } from "../crypto/integrity-root.js";
import { createKeyring } from "../crypto/keyring.js";
import { generateSecret, hashSecret, legacyHashSecret, newId, secretPrefix } from "../crypto/secret-format.js";
import type { Db } from "../store/db.js";
import { migrate } from "../store/migrations.js";

/**
 * Issue 18, finding 5: refresh tokens are stored keyed (h1:HMAC under the integrity root), so a
 * row inserted with database access alone (plain SHA-256, the only hash SQL can compute) refreshes
 * nothing. Tokens issued before the upgrade were marked at it and still refresh, once.
 */

const engines = placeEngines("refresh hashes");

async function form(kw: TestServer, params: Record<string, string>) {
  const res = await fetch(`${kw.url}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(params).toString(),
  });
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) };
}
const refresh = (kw: TestServer, token: string) => form(kw, { grant_type: "refresh_token", refresh_token: token });

const COLS = "id, hash, family, key_id, subject, scope, audience, created_at, expires_at, used_at, revoked_at";

async function plantRefresh(db: Db, secret: string, keyId: string, mark: string | null, withMark = true) {
  const id = newId("rt");
  const vals = [id, legacyHashSecret(secret), newId("rtf"), keyId, "consumer:acme", "read", null, Date.now()];
  const expires = Date.now() + 3_600_000;
  if (withMark) {
    await db.exec(
      `INSERT INTO refresh_tokens (${COLS}, legacy_mark) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, $10)`,
      [...vals, expires, mark],
    );
  } else {
    await db.exec(`INSERT INTO refresh_tokens (${COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL)`, [
      ...vals,
      expires,
    ]);
  }
}

describe.each(engines)("stored refresh-token hashes on $name", ({ skip, place }) => {
  let p: Place;
  let kw: TestServer | undefined;
  afterEach(async () => {
    await kw?.close();
    kw = undefined;
    await p?.cleanup();
  });

  it.skipIf(skip)("new refresh tokens are keyed; one inserted with plain SHA-256 is refused", async () => {
    p = place();
    kw = await p.start();
    await kw.admin("POST", "/consumers", { name: "acme" });
    const key = await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["read"] });
    const issued = await fetch(`${kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: key.body.secret }),
    }).then((r) => readJson<TokenEndpointBody>(r));
    await kw.close();
    kw = undefined;
    const planted = generateSecret("kwr");
    const markedByInsider = generateSecret("kwr");
    await p.sql(async (db) => {
      const rows = await db.query<{ hash: string }>("SELECT hash FROM refresh_tokens");
      expect(rows.map((r) => r.hash)).toEqual([expect.stringMatching(/^h1:[0-9a-f]{64}$/)]);
      await plantRefresh(db, planted, key.body.key.id, null);
      await plantRefresh(db, markedByInsider, key.body.key.id, "0".repeat(64));
    });
    kw = await p.start();
    for (const token of [planted, markedByInsider]) {
      const r = await refresh(kw, token);
      expect(r.status).toBe(400);
      expect(r.body.error).toBe("invalid_grant");
      expect(r.text).not.toContain(token);
    }
    expect((await refresh(kw, issued.refresh_token)).status).toBe(200);
  });

  it.skipIf(skip)("upgrade from migration 7: a refresh token issued before refreshes once, then is spent", async () => {
    p = place();
    const legacy = generateSecret("kwr");
    const keyId = newId("key");
    await p.sql(async (db) => {
      // The previous version: schema 7, its root, keys keyed, refresh tokens plain SHA-256.
      await migrate(db, { through: 7 });
      const integrity = await openIntegrity({
        db,
        keyring: createKeyring({ active: Buffer.from(TEST_MASTER_KEY, "base64") }),
        clock: systemClock,
      });
      await db.exec("INSERT INTO consumers (name, metadata, created_at, updated_at) VALUES ('acme', '{}', 1, 1)");
      const secret = generateSecret("kwk");
      await db.exec(
        `INSERT INTO api_keys (id, hash, prefix, owner, scopes, status, lineage, created_at, updated_at)
         VALUES ($1, $2, $3, 'consumer:acme', '["read"]', 'active', $1, 1, 1)`,
        [keyId, hashSecret(secret, integrity.keys), secretPrefix(secret)],
      );
      await plantRefresh(db, legacy, keyId, null, false);
      // The previous start had marked its legacy API keys: the marker exists, as it would.
      await db.exec("INSERT INTO meta (key, value) VALUES ('legacy_hashes_v1', $1)", [
        integrity.keys.mac("legacyHash", "legacy_hashes_v1"),
      ]);
    });
    kw = await p.start();
    const first = await refresh(kw, legacy);
    expect(first.status).toBe(200);
    expect(first.body.refresh_token).toMatch(/^kwr_/);
    // Single use, as before the upgrade: presented again, it is a reuse and its family dies.
    const again = await refresh(kw, legacy);
    expect(again.body.error).toBe("invalid_grant");
    expect((await refresh(kw, first.body.refresh_token)).body.error).toBe("invalid_grant");
    await kw.close();
    kw = undefined;
    await p.sql(async (db) => {
      const rows = await db.query<{ hash: string; legacy_mark: string | null }>(
        "SELECT hash, legacy_mark FROM refresh_tokens ORDER BY created_at",
      );
      expect(rows.every((r) => r.hash.startsWith("h1:") && r.legacy_mark === null)).toBe(true);
    });
  });
});
