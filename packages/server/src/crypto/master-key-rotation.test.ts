import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { testEngines } from "../../test-support/databases.js";
import { createAuditLog } from "../audit/audit-log.js";
import { frozenClock } from "../clock.js";
import { createLocalChangeFeed } from "../cluster/change-feed.js";
import { createCredentialsModule } from "../credentials/credentials-module.js";
import { PROVIDER_TYPE } from "../credentials/credentials-service.js";
import { CREDENTIAL_SEALED_COLUMNS } from "../credentials/credentials-store.js";
import { silentLogger } from "../ops/logger.js";
import { createMetrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import { createIntegrityKeys } from "./integrity-keys.js";
import { createKeyring, type Keyring, masterKeyId } from "./keyring.js";
import { rewrapAll, SIGNING_KEYS_SEALED, sealedInventory } from "./master-key-rotation.js";
import { createSigningKeys } from "./signing-keys.js";

/** One integrity root for every module built here, as one database has. */
const TEST_INTEGRITY = createIntegrityKeys(Buffer.alloc(32, 13));

/**
 * Master-key rotation on both engines: every data key (credential values, client secrets, signing
 * keys) is re-wrapped under the new key while the values' ciphertext stays byte for byte; old key
 * ids keep opening until the re-wrap is done; a second run, or a run after a crash, finishes the job.
 */

const OLD = Buffer.alloc(32, 1);
const NEW = Buffer.alloc(32, 2);
const COLUMNS = [SIGNING_KEYS_SEALED, ...CREDENTIAL_SEALED_COLUMNS];
const INERT = { set: () => undefined, clear: () => {} };

for (const e of testEngines) if (e.skip) console.warn(`[master-key rotation] ${e.name} skipped: ${e.skip}`);

describe.each(testEngines)("master-key rotation on $name", ({ skip, open }) => {
  let db: Db;
  const closers: Array<() => Promise<void> | void> = [];

  function module(keyring: Keyring) {
    const audit = createAuditLog({ db, clock: frozenClock(), logger: silentLogger() });
    const m = createCredentialsModule(
      {
        db,
        keyring,
        clock: frozenClock(),
        audit,
        changes: createLocalChangeFeed(),
        logger: silentLogger(),
        metrics: createMetrics(),
        integrity: TEST_INTEGRITY,
      },
      { heartbeatMs: 60_000, refreshTimers: INERT },
    );
    closers.push(
      () => m.close(),
      () => audit.close(),
    );
    return m;
  }
  const sealedRows = async () => [
    ...(await db.query<{ k: string; v: Buffer }>("SELECT kid AS k, private_enc AS v FROM signing_keys ORDER BY kid")),
    ...(await db.query<{ k: string; v: Buffer }>(
      "SELECT name || ':' || version AS k, value_enc AS v FROM credential_versions ORDER BY name, version",
    )),
    ...(await db.query<{ k: string; v: Buffer }>(
      "SELECT name AS k, provider_secret AS v FROM credentials WHERE provider_secret IS NOT NULL ORDER BY name",
    )),
  ];
  const values = async (keyring: Keyring) => {
    const m = module(keyring);
    const rows = await db.query<{ name: string; version: number; value_enc: Buffer }>(
      "SELECT name, version, value_enc FROM credential_versions ORDER BY name, version",
    );
    return rows.map((r) => `${r.name}@${r.version}=${m.credentials.openVersion({ ...r, version: Number(r.version) })}`);
  };

  beforeEach(async () => {
    if (skip) return;
    db = await open();
    const old = createKeyring({ active: OLD });
    await createSigningKeys({ db, keyring: old, clock: frozenClock() }).init();
    const m = module(old);
    const actor = { principal: "admin:test" };
    for (let i = 0; i < 7; i++)
      await m.credentials.set(actor, `cred-${i % 3}`, { type: "static", value: `v${i}` }, undefined);
    await m.credentials.set(
      actor,
      "provider",
      { type: PROVIDER_TYPE, token_url: "https://login.example.com/t", client_id: "c", client_secret: "client-s" },
      undefined,
    );
  });
  afterEach(async () => {
    if (skip) return;
    for (const c of closers.splice(0)) await c();
    await db.close();
  });

  it.skipIf(skip)(
    "re-wraps every sealed column under the new key without touching the values' ciphertext",
    async () => {
      const before = await sealedRows();
      expect(before).toHaveLength(9); // 1 signing key, 7 versions, 1 client secret
      const expected = await values(createKeyring({ active: OLD }));
      const rotating = createKeyring({ active: NEW, retired: [OLD] });
      const loaded = new Set(rotating.keyIds);
      const pending = await sealedInventory(db, rotating, COLUMNS, loaded);
      expect(pending.keys).toEqual([
        { id: masterKeyId(NEW), active: true, loaded: true, values: 0 },
        { id: masterKeyId(OLD), active: false, loaded: true, values: 9 },
      ]);

      const report = await rewrapAll(db, rotating, COLUMNS);
      expect(report).toEqual({ active_key_id: masterKeyId(NEW), rewrapped: 9, current: 0, raced: 0, failed: [] });
      const after = await sealedRows();
      for (const [i, row] of after.entries()) {
        const was = before[i]!;
        expect(row.k).toBe(was.k);
        expect(rotating.keyIdOf(row.v)).toBe(masterKeyId(NEW));
        expect(row.v.subarray(69).equals(was.v.subarray(69))).toBe(true); // value iv, tag, ciphertext
        expect(row.v.subarray(1, 69).equals(was.v.subarray(1, 69))).toBe(false); // key id and wrapped key
      }
      // The old key is no longer needed for anything.
      const onlyNew = createKeyring({ active: NEW });
      expect(await values(onlyNew)).toEqual(expected);
      await createSigningKeys({ db, keyring: onlyNew, clock: frozenClock() }).init();
      const provider = (
        await db.query<{ provider_secret: Buffer; config_seq: number }>(
          "SELECT provider_secret, config_seq FROM credentials WHERE name = 'provider'",
        )
      )[0]!;
      const m = module(onlyNew);
      const row = (await m.credentials.get("provider")).credential.row;
      expect(m.credentials.clientSecret({ ...row, provider_secret: provider.provider_secret }).toString()).toBe(
        "client-s",
      );

      // Idempotent: a second run finds nothing to do.
      expect(await rewrapAll(db, rotating, COLUMNS)).toMatchObject({ rewrapped: 0, current: 9, failed: [] });
    },
  );

  it.skipIf(skip)("keeps every value readable mid-way, and a run after a crash finishes the job", async () => {
    const rotating = createKeyring({ active: NEW, retired: [OLD] });
    const expected = await values(createKeyring({ active: OLD }));
    // A crash after two rows: those are under the new key, the rest under the old one.
    const rows = await db.query<{ name: string; version: number; value_enc: Buffer }>(
      "SELECT name, version, value_enc FROM credential_versions ORDER BY name, version LIMIT 2",
    );
    for (const r of rows) {
      const aad = `credential_versions:${r.name}:${r.version}:value`;
      await db.exec("UPDATE credential_versions SET value_enc = $1 WHERE name = $2 AND version = $3", [
        rotating.rewrap(r.value_enc, aad),
        r.name,
        r.version,
      ]);
    }
    expect(await values(rotating)).toEqual(expected);
    const report = await rewrapAll(db, rotating, COLUMNS);
    expect(report).toMatchObject({ rewrapped: 7, current: 2, failed: [] });
    expect(await values(createKeyring({ active: NEW }))).toEqual(expected);
  });

  it.skipIf(skip)("reports a damaged row by record name, leaves it as it is, and rewraps the rest", async () => {
    const row = (
      await db.query<{ value_enc: Buffer }>(
        "SELECT value_enc FROM credential_versions WHERE name = 'cred-1' AND version = 1",
      )
    )[0]!;
    const damaged = Buffer.from(row.value_enc);
    damaged[40] = (damaged[40] as number) ^ 0x80;
    await db.exec("UPDATE credential_versions SET value_enc = $1 WHERE name = 'cred-1' AND version = 1", [damaged]);
    const rotating = createKeyring({ active: NEW, retired: [OLD] });
    const report = await rewrapAll(db, rotating, COLUMNS);
    expect(report.rewrapped).toBe(8);
    expect(report.failed).toEqual([
      { record: "credential_versions:cred-1:1:value", reason: expect.stringMatching(/authentication failed/) },
    ]);
    const still = (
      await db.query<{ value_enc: Buffer }>(
        "SELECT value_enc FROM credential_versions WHERE name = 'cred-1' AND version = 1",
      )
    )[0]!;
    expect(still.value_enc.equals(damaged)).toBe(true);
  });

  it.skipIf(skip)("opens nothing sealed under a key it was not given, and says which key is missing", async () => {
    const stranger = createKeyring({ active: NEW });
    const report = await rewrapAll(db, stranger, COLUMNS);
    expect(report.rewrapped).toBe(0);
    expect(report.failed).toHaveLength(9);
    expect(report.failed[0]!.reason).toContain(`master key ${masterKeyId(OLD)}, which is not loaded`);
    const inv = await sealedInventory(db, stranger, COLUMNS, new Set(stranger.keyIds));
    expect(inv.keys.find((k) => k.id === masterKeyId(OLD))).toEqual({
      id: masterKeyId(OLD),
      active: false,
      loaded: false,
      values: 9,
    });
  });
});
