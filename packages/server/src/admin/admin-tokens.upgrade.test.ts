import { afterEach, describe, expect, it } from "vitest";
import { call } from "../../test-support/admin-identities.js";
import { type Place, placeEngines } from "../../test-support/database-places.js";
import { TEST_MASTER_KEY, type TestServer } from "../../test-support/server.js";
import { systemClock } from "../clock.js";
import { openIntegrity } from "../crypto/integrity-root.js";
import { createKeyring } from "../crypto/keyring.js";
import { generateSecret, hashSecret } from "../crypto/secret-format.js";
import { migrate } from "../store/migrations.js";

/**
 * Upgrading a database made before admin roles (schema 11): its admin tokens keep working, as owners.
 */
describe.each(placeEngines("admin tokens upgrade"))("upgrade to admin roles on $name", ({ skip, place }) => {
  let p: Place | undefined;
  let kw: TestServer | undefined;
  afterEach(async () => {
    await kw?.close();
    kw = undefined;
    await p?.cleanup();
  });

  it.skipIf(skip)("an admin token from schema 11 is an owner after the upgrade", async () => {
    p = place();
    const old = generateSecret("kwa");
    await p.sql(async (db) => {
      // What the previous version left: schema 11, its integrity root, an admin token stored keyed.
      await migrate(db, { through: 11 });
      const integrity = await openIntegrity({
        db,
        keyring: createKeyring({ active: Buffer.from(TEST_MASTER_KEY, "base64") }),
        clock: systemClock,
      });
      await db.exec("INSERT INTO admin_tokens (id, hash, name, created_at) VALUES ('adm_old', $1, 'ops', 1)", [
        hashSecret(old, integrity.keys),
      ]);
    });
    kw = await p.start();
    const list = await call(kw.url, "GET", "/admin/v1/admin-tokens", { bearer: old });
    expect(list.status).toBe(200);
    expect(list.body.items).toEqual([
      { id: "adm_old", name: "ops", role: "owner", status: "active", created_at: expect.any(String), revoked_at: null },
    ]);
    // An owner may do what only owners may: make another admin token.
    const made = await call(kw.url, "POST", "/admin/v1/admin-tokens", {
      bearer: old,
      body: { name: "v", role: "viewer" },
    });
    expect(made.status).toBe(201);
    expect((await call(kw.url, "POST", "/admin/v1/consumers", { bearer: old, body: { name: "acme" } })).status).toBe(
      201,
    );
  });
});
