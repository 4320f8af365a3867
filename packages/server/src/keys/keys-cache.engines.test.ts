import { afterEach, describe, expect, it } from "vitest";
import { testEngines } from "../../test-support/databases.js";
import { recordingAudit } from "../../test-support/recording-audit.js";
import { frozenClock } from "../clock.js";
import { openIntegrity } from "../crypto/integrity-root.js";
import { createKeyring } from "../crypto/keyring.js";
import type { Db } from "../store/db.js";
import { createKeysService } from "./keys-service.js";
import { createKeysStore, type KeysStore } from "./keys-store.js";

/** The keys service's cache against a real store: how many reads a burst of lookups costs. */

const ADMIN = { principal: "admin:test" };

for (const e of testEngines) if (e.skip) console.warn(`[keys cache] ${e.name} skipped: ${e.skip}`);

describe.each(testEngines)("key lookups through the cache on $name", ({ skip, open }) => {
  let db: Db;
  afterEach(async () => {
    if (!skip) await db.close();
  });

  async function service() {
    db = await open();
    const integrity = await openIntegrity({
      db,
      keyring: createKeyring({ active: Buffer.alloc(32, 0x3c) }),
      clock: frozenClock(),
    });
    const real = createKeysStore(db);
    const reads = { byHash: 0 };
    // The real store, with its reads by hash counted.
    const store: KeysStore = {
      ...real,
      getByHash: (hash) => {
        reads.byHash++;
        return real.getByHash(hash);
      },
    };
    const keys = createKeysService({
      db,
      store,
      clock: frozenClock(),
      audit: recordingAudit(),
      integrity: integrity.keys,
      ownerExists: async () => true,
    });
    return { keys, reads };
  }

  it.skipIf(skip)("twenty concurrent first uses of one key make one store read; later ones none", async () => {
    const { keys, reads } = await service();
    const { row, secret } = await keys.create(ADMIN, { owner: "consumer:c", scopes: ["read"] });
    expect(keys.cached(secret)).toBeUndefined();
    const entries = await Promise.all(Array.from({ length: 20 }, () => keys.load(secret)));
    expect(entries.every((e) => e?.id === row.id)).toBe(true);
    expect(reads.byHash).toBe(1);
    for (let i = 0; i < 20; i++) expect(keys.cached(secret)).toMatchObject({ id: row.id, status: "active" });
    expect(reads.byHash).toBe(1);
  });

  it.skipIf(skip)("a revocation drops the cached key: the next lookup reads it again and sees it revoked", async () => {
    const { keys, reads } = await service();
    const { row, secret } = await keys.create(ADMIN, { owner: "consumer:c", scopes: ["read"] });
    await keys.load(secret);
    await keys.revoke(ADMIN, row.id);
    expect(keys.cached(secret)).toBeUndefined();
    expect(await keys.load(secret)).toMatchObject({ id: row.id, status: "revoked" });
    expect(reads.byHash).toBe(2);
  });
});
