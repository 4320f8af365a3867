import { afterEach, describe, expect, it } from "vitest";
import { testEngines } from "../../test-support/databases.js";
import { recordingAudit } from "../../test-support/recording-audit.js";
import { createAdminAuth } from "../admin/admin-auth.js";
import { frozenClock } from "../clock.js";
import { openIntegrity } from "../crypto/integrity-root.js";
import { createKeyring } from "../crypto/keyring.js";
import { markLegacyHashes } from "../crypto/legacy-hashes.js";
import { generateSecret, legacyHashSecret, newId, secretPrefix } from "../crypto/secret-format.js";
import type { RequestContext } from "../http/router.js";
import type { Db } from "../store/db.js";
import { migrate } from "../store/migrations.js";
import { createKeysService } from "./keys-service.js";
import { createKeysStore } from "./keys-store.js";

/**
 * Issue 18, finding 5: database write access alone must not make a working key or admin token.
 * Rows are planted with raw SQL, hashed the way such an insider can: plain SHA-256.
 */

const MASTER = Buffer.alloc(32, 0x5e);

for (const e of testEngines) if (e.skip) console.warn(`[stored hashes] ${e.name} skipped: ${e.skip}`);

describe.each(testEngines)("stored key hashes against database access alone on $name", ({ skip, open }) => {
  let db: Db;
  afterEach(async () => {
    if (!skip) await db.close();
  });

  /** What a start of this version does before serving: root, then legacy marks. */
  async function start() {
    const integrity = await openIntegrity({ db, keyring: createKeyring({ active: MASTER }), clock: frozenClock() });
    await markLegacyHashes({ db, keys: integrity.keys });
    const keys = createKeysService({
      db,
      store: createKeysStore(db),
      clock: frozenClock(),
      audit: recordingAudit(),
      integrity: integrity.keys,
      ownerExists: async () => true,
    });
    const admin = createAdminAuth({ db, clock: frozenClock(), integrity: integrity.keys });
    const asAdmin = (token: string) =>
      admin.requireAdmin({
        req: { headers: { authorization: `Bearer ${token}` } },
        res: { headersSent: false, setHeader() {} },
        peerIp: "127.0.0.1",
        requestId: "r",
      } as unknown as RequestContext);
    return { keys, asAdmin };
  }

  /** A key row as the previous version wrote it (and as an insider can): plain SHA-256. */
  async function plantKey(secret: string, legacyMark: string | null = null, withMarkColumn = true) {
    const id = newId("key");
    const cols = "id, hash, prefix, owner, scopes, status, lineage, created_at, updated_at";
    const vals = [id, legacyHashSecret(secret), secretPrefix(secret), "consumer:c", '["read"]', "active", id, 1, 1];
    if (withMarkColumn) {
      await db.exec(`INSERT INTO api_keys (${cols}, legacy_mark) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`, [
        ...vals,
        legacyMark,
      ]);
    } else {
      await db.exec(`INSERT INTO api_keys (${cols}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)`, vals);
    }
    return id;
  }
  async function plantAdminToken(token: string, withMarkColumn = true) {
    await db.exec(
      `INSERT INTO admin_tokens (id, hash, name, created_at${withMarkColumn ? ", legacy_mark" : ""}) VALUES ($1, $2, 'x', 1${withMarkColumn ? ", NULL" : ""})`,
      [`adm_${newId("t").slice(-8)}`, legacyHashSecret(token)],
    );
  }

  it.skipIf(skip)("a key or admin token inserted with plain SHA-256 is refused", async () => {
    db = await open();
    const { keys, asAdmin } = await start();
    const secret = generateSecret("kwk");
    await plantKey(secret);
    expect(await keys.lookup(secret)).toBeNull();
    // A mark of the insider's making does not help.
    const other = generateSecret("kwk");
    await plantKey(other, "0".repeat(64));
    expect(await keys.lookup(other)).toBeNull();
    const token = generateSecret("kwa");
    await plantAdminToken(token);
    await expect(asAdmin(token)).rejects.toMatchObject({ code: "unauthorized" });
    // Keys made by Keyward are stored keyed, and work.
    const made = await keys.create({ principal: "admin:root" } as never, { owner: "consumer:c", scopes: ["read"] });
    expect(made.row.hash).toMatch(/^h1:[0-9a-f]{64}$/);
    expect(await keys.lookup(made.secret)).toMatchObject({ id: made.row.id });
  });

  for (const previous of [5, 6]) {
    it.skipIf(skip)(
      `upgrade from migration ${previous}: keys and admin tokens stored before keep working, once re-hashed`,
      async () => {
        db = await open(previous);
        if (previous === 6)
          await openIntegrity({ db, keyring: createKeyring({ active: MASTER }), clock: frozenClock() });
        const secret = generateSecret("kwk");
        const id = await plantKey(secret, null, false);
        const token = generateSecret("kwa");
        await plantAdminToken(token, false);
        await migrate(db);

        const first = await start();
        expect(await first.keys.lookup(secret)).toMatchObject({ id });
        await expect(first.asAdmin(token)).resolves.toMatchObject({ principal: expect.stringMatching(/^admin:adm_/) });
        const row = (
          await db.query<{ hash: string; legacy_mark: string | null }>(
            "SELECT hash, legacy_mark FROM api_keys WHERE id = $1",
            [id],
          )
        )[0];
        expect(row).toEqual({ hash: expect.stringMatching(/^h1:/), legacy_mark: null });

        // After the upgrade, neither a planted row nor a deleted marker makes a plain hash work.
        const planted = generateSecret("kwk");
        await plantKey(planted);
        await db.exec("DELETE FROM meta WHERE key = 'legacy_hashes_v1'");
        const restarted = await start();
        expect(await restarted.keys.lookup(planted)).toBeNull();
        expect(await restarted.keys.lookup(secret)).toMatchObject({ id });
        await expect(restarted.asAdmin(token)).resolves.toBeDefined();
      },
    );
  }
});
