import { afterEach, describe, expect, it } from "vitest";
import { testEngines } from "../../test-support/databases.js";
import { frozenClock } from "../clock.js";
import { INTEGRITY_ROOT_SEALED, openIntegrity } from "../crypto/integrity-root.js";
import { createKeyring, DecryptError, type Keyring } from "../crypto/keyring.js";
import { rewrapAll } from "../crypto/master-key-rotation.js";
import { silentLogger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import { migrate } from "../store/migrations.js";
import { type ChainRow, canonicalJson, chainHash, GENESIS_HASH } from "./audit-chain.js";
import { type AuditChainState, createAuditChainState } from "./audit-checkpoints.js";
import { type AuditLog, createAuditLog } from "./audit-log.js";

/**
 * Issue 18, finding 4: an insider with write access to the database, and nothing else. Every
 * tampering is raw SQL; every forged hash is computed the way such an insider can: plain SHA-256.
 */

const KEY_A = Buffer.alloc(32, 0xa1);
const KEY_B = Buffer.alloc(32, 0xb2);
/** The last migration of the version before keyed links (and the integrity root) existed. */
const PRE_INTEGRITY = 5;

for (const e of testEngines) if (e.skip) console.warn(`[audit integrity] ${e.name} skipped: ${e.skip}`);

describe.each(testEngines)("audit integrity against database access alone on $name", ({ skip, open }) => {
  let db: Db;
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
  });

  async function start(keyring: Keyring): Promise<{ audit: AuditLog; chain: AuditChainState; keyedFrom: number }> {
    const clock = frozenClock();
    const integrity = await openIntegrity({ db, keyring, clock });
    const chain = createAuditChainState({ keyedFrom: integrity.auditKeyedFrom, keys: integrity.keys });
    const audit = createAuditLog({ db, clock, logger: silentLogger(), chain });
    closers.push(() => audit.close());
    return { audit, chain, keyedFrom: integrity.auditKeyedFrom };
  }
  async function openDb(through?: number): Promise<Db> {
    db = await open(through);
    closers.push(() => db.close());
    return db;
  }
  const record = (audit: AuditLog, n: number, from = 1) =>
    (async () => {
      for (let i = from; i < from + n; i++) {
        await audit.record({
          actor: "admin:root",
          action: "credential.put",
          target: `credential:c${i}`,
          outcome: "success",
        });
      }
    })();
  const rows = async (): Promise<ChainRow[]> =>
    (await db.query<ChainRow>("SELECT * FROM audit_events ORDER BY seq")).map((r) => ({
      ...r,
      seq: Number(r.seq),
      time: Number(r.time),
    }));

  /** What an insider can do: rewrite from `seq` on and relink every later row with plain SHA-256. */
  async function rewriteWithPlainSha256(seq: number, edit: Partial<ChainRow>): Promise<void> {
    const all = await rows();
    let prev = all.find((r) => r.seq === seq - 1)?.hash ?? GENESIS_HASH;
    for (const r of all.filter((x) => x.seq >= seq)) {
      const next = { ...r, ...(r.seq === seq ? edit : {}), prev_hash: prev };
      next.hash = chainHash(prev, next);
      await db.exec("UPDATE audit_events SET target = $1, prev_hash = $2, hash = $3 WHERE seq = $4", [
        next.target,
        next.prev_hash,
        next.hash,
        r.seq,
      ]);
      prev = next.hash;
    }
  }

  it.skipIf(skip)("a row rewritten with its chain recomputed in plain SHA-256 is reported at that row", async () => {
    await openDb();
    const { audit } = await start(createKeyring({ active: KEY_A }));
    await record(audit, 6);
    expect(await audit.verify()).toMatchObject({ ok: true, count: 6 });
    await rewriteWithPlainSha256(3, { target: "credential:innocent" });
    // A fresh process (no anchor): the keyed links alone catch it.
    const { audit: fresh } = await start(createKeyring({ active: KEY_A }));
    expect(await fresh.verify()).toEqual({ ok: false, reason: "altered", first_broken_seq: 3, count: 2 });
  });

  it.skipIf(skip)(
    "deleting the newest rows is truncation: against the live head, and against a checkpoint",
    async () => {
      await openDb();
      const { audit, chain } = await start(createKeyring({ active: KEY_A }));
      await record(audit, 5);
      const checkpoint = chain.checkpoint();
      expect(checkpoint).toMatchObject({ seq: 5, head: (await rows())[4]?.hash });
      await db.exec("DELETE FROM audit_events WHERE seq > 3");
      expect(await audit.verify()).toEqual({
        ok: false,
        reason: "truncated",
        first_broken_seq: 4,
        count: 3,
        anchor: "process",
      });
      // A restarted process has no anchor of its own; the emitted checkpoint still tells.
      const { audit: restarted, chain: restartedChain } = await start(createKeyring({ active: KEY_A }));
      expect(await restarted.verify()).toMatchObject({ ok: true, count: 3 });
      expect(restartedChain.checkpointMacValid(checkpoint!)).toBe(true);
      expect(await restarted.verify({ seq: checkpoint!.seq, head: checkpoint!.head })).toMatchObject({
        ok: false,
        reason: "truncated",
        first_broken_seq: 4,
        anchor: "checkpoint",
      });
      // Written on from the truncated state, the chain is long enough again, but not the same one.
      await record(restarted, 3, 100);
      expect(await restarted.verify({ seq: checkpoint!.seq, head: checkpoint!.head })).toMatchObject({
        ok: false,
        reason: "rolled_back",
        first_broken_seq: 5,
        anchor: "checkpoint",
      });
      expect(await audit.verify()).toMatchObject({ ok: false, reason: "rolled_back", anchor: "process" });
    },
  );

  it.skipIf(skip)("a checkpoint's MAC is bound to seq and head, and to this database's root", async () => {
    await openDb();
    const { audit, chain } = await start(createKeyring({ active: KEY_A }));
    await record(audit, 2);
    const c = chain.checkpoint()!;
    expect(chain.checkpointMacValid(c)).toBe(true);
    expect(chain.checkpointMacValid({ ...c, seq: c.seq + 1 })).toBe(false);
    expect(chain.checkpointMacValid({ ...c, head: "0".repeat(64) })).toBe(false);
    expect(chain.checkpointMacValid({ ...c, mac: "0".repeat(64) })).toBe(false);
  });

  it.skipIf(skip)("the switch point cannot be moved: editing it makes the root unopenable", async () => {
    await openDb();
    const { audit } = await start(createKeyring({ active: KEY_A }));
    await record(audit, 3);
    // Moving the switch past the head would have every keyed row judged by the plain rule.
    await db.exec("UPDATE integrity_keys SET audit_keyed_from = 1000");
    await expect(
      openIntegrity({ db, keyring: createKeyring({ active: KEY_A }), clock: frozenClock() }),
    ).rejects.toThrow(DecryptError);
  });

  it.skipIf(skip)("upgrade: a chain written by the previous version still verifies, and goes on keyed", async () => {
    // The database as the previous commit left it: schema through migration 5, legacy links.
    await openDb(PRE_INTEGRITY);
    let prev = GENESIS_HASH;
    for (let seq = 1; seq <= 4; seq++) {
      const f = {
        seq,
        time: 1_767_225_600_000 + seq,
        actor: "admin:root",
        action: "key.create",
        target: `key_${seq}`,
        outcome: "success",
        code: null,
        ip: "127.0.0.1",
        request_id: `req-${seq}`,
        details: canonicalJson({ n: seq }),
      };
      const hash = chainHash(prev, f);
      await db.exec(
        `INSERT INTO audit_events (seq, time, actor, action, target, outcome, code, ip, request_id, details, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
        [f.seq, f.time, f.actor, f.action, f.target, f.outcome, f.code, f.ip, f.request_id, f.details, prev, hash],
      );
      prev = hash;
    }
    await migrate(db);
    const { audit, keyedFrom } = await start(createKeyring({ active: KEY_A }));
    expect(keyedFrom).toBe(5);
    await record(audit, 3);
    expect(await audit.verify()).toMatchObject({ ok: true, count: 7 });
    const after = await rows();
    // New rows are keyed: their plain SHA-256 link is not what they hold; the old ones' still is.
    expect(after[4]!.hash).not.toBe(chainHash(after[4]!.prev_hash, after[4]!));
    expect(after[3]!.hash).toBe(chainHash(after[3]!.prev_hash, after[3]!));
    // Rewriting the legacy part (which plain SHA-256 can relink) breaks at the first keyed row,
    // whose MAC covers the legacy head.
    const { audit: fresh } = await start(createKeyring({ active: KEY_A }));
    await rewriteWithPlainSha256(2, { target: "key_other" });
    expect(await fresh.verify()).toEqual({ ok: false, reason: "altered", first_broken_seq: 5, count: 4 });
  });

  it.skipIf(skip)("upgrade: deleting every keyed row is truncation against the switch point", async () => {
    await openDb(PRE_INTEGRITY);
    const legacy = createAuditLog({ db, clock: frozenClock(), logger: silentLogger() });
    await record(legacy, 3);
    await legacy.close();
    await migrate(db);
    const { audit } = await start(createKeyring({ active: KEY_A }));
    await record(audit, 2);
    await db.exec("DELETE FROM audit_events WHERE seq >= 2");
    const { audit: fresh } = await start(createKeyring({ active: KEY_A }));
    expect(await fresh.verify()).toMatchObject({
      ok: false,
      reason: "truncated",
      first_broken_seq: 2,
      anchor: "keyed_from",
    });
  });

  it.skipIf(skip)(
    "after a master-key rotation, rows keyed before and after it verify, with only the new key",
    async () => {
      await openDb();
      const { audit } = await start(createKeyring({ active: KEY_A }));
      await record(audit, 3);
      const rotating = createKeyring({ active: KEY_B, retired: [KEY_A] });
      const report = await rewrapAll(db, rotating, [INTEGRITY_ROOT_SEALED]);
      expect(report).toMatchObject({ rewrapped: 1, failed: [] });
      const { audit: after } = await start(createKeyring({ active: KEY_B }));
      await record(after, 2, 10);
      expect(await after.verify()).toMatchObject({ ok: true, count: 5 });
      await rewriteWithPlainSha256(4, { target: "credential:x" });
      const { audit: fresh } = await start(createKeyring({ active: KEY_B }));
      expect(await fresh.verify()).toMatchObject({ ok: false, reason: "altered", first_broken_seq: 4 });
    },
  );
});
