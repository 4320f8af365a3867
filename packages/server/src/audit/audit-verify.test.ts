import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { testEngines } from "../../test-support/databases.js";
import { frozenClock } from "../clock.js";
import { silentLogger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import { chainHash } from "./audit-chain.js";
import { type AuditLog, createAuditLog } from "./audit-log.js";
import type { AuditRow } from "./audit-store.js";

/** Tampering is done with raw SQL, as someone with database access would do it. */
describe.each(testEngines)("audit chain verification on $name", ({ skip, open }) => {
  let db: Db;
  let audit: AuditLog;

  beforeEach(async () => {
    if (skip) return;
    db = await open();
    const clock = frozenClock();
    audit = createAuditLog({ db, clock, logger: silentLogger() });
    for (let i = 1; i <= 6; i++) {
      clock.advance(1000);
      await audit.record({
        actor: "admin:root",
        action: "credential.put",
        target: `credential:c${i}`,
        outcome: "success",
        details: { version: i },
      });
    }
  });
  afterEach(async () => {
    if (skip) return;
    await audit.close();
    await db.close();
  });

  const row = async (seq: number): Promise<AuditRow> =>
    (await db.query<AuditRow>("SELECT * FROM audit_events WHERE seq = $1", [seq])).map((r) => ({
      ...r,
      seq: Number(r.seq),
      time: Number(r.time),
    }))[0]!;

  it.skipIf(skip)("accepts the chain as written, with the last hash as head", async () => {
    expect(await audit.verify()).toEqual({ ok: true, count: 6, head: (await row(6)).hash });
  });

  it.skipIf(skip)("pages through a chain longer than one verify page", async () => {
    await Promise.all(
      Array.from({ length: 2100 }, () => audit.record({ actor: "a", action: "b", outcome: "success" })),
    );
    expect(await audit.verify()).toMatchObject({ ok: true, count: 2106 });
    await db.exec("UPDATE audit_events SET action = 'x' WHERE seq = 2050");
    expect(await audit.verify()).toEqual({ ok: false, reason: "altered", first_broken_seq: 2050, count: 2049 });
  });

  it.skipIf(skip)("detects an edited field at that row", async () => {
    await db.exec("UPDATE audit_events SET outcome = 'denied' WHERE seq = 3");
    expect(await audit.verify()).toEqual({ ok: false, reason: "altered", first_broken_seq: 3, count: 2 });
  });

  it.skipIf(skip)("detects edited details and an edited time", async () => {
    await db.exec(`UPDATE audit_events SET details = '{"version":99}' WHERE seq = 5`);
    expect(await audit.verify()).toMatchObject({ ok: false, reason: "altered", first_broken_seq: 5 });
    await db.exec("UPDATE audit_events SET time = time + 1 WHERE seq = 2");
    expect(await audit.verify()).toMatchObject({ ok: false, reason: "altered", first_broken_seq: 2 });
  });

  it.skipIf(skip)("detects an edit whose hash was recomputed, at the next row", async () => {
    const r = await row(3);
    const forged = { ...r, target: "credential:other" };
    await db.exec("UPDATE audit_events SET target = $1, hash = $2 WHERE seq = 3", [
      forged.target,
      chainHash(r.prev_hash, forged),
    ]);
    expect(await audit.verify()).toEqual({ ok: false, reason: "altered", first_broken_seq: 4, count: 3 });
  });

  it.skipIf(skip)("detects a deleted row by its missing seq", async () => {
    await db.exec("DELETE FROM audit_events WHERE seq = 4");
    expect(await audit.verify()).toEqual({ ok: false, reason: "altered", first_broken_seq: 4, count: 3 });
  });

  it.skipIf(skip)("detects the first row deleted", async () => {
    await db.exec("DELETE FROM audit_events WHERE seq = 1");
    expect(await audit.verify()).toEqual({ ok: false, reason: "altered", first_broken_seq: 1, count: 0 });
  });

  it.skipIf(skip)("detects a deleted row whose successors were renumbered", async () => {
    await db.exec("DELETE FROM audit_events WHERE seq = 2");
    for (let seq = 3; seq <= 6; seq++) await db.exec("UPDATE audit_events SET seq = $1 WHERE seq = $2", [seq - 1, seq]);
    expect(await audit.verify()).toEqual({ ok: false, reason: "altered", first_broken_seq: 2, count: 1 });
  });

  it.skipIf(skip)("detects two rows that swapped places", async () => {
    await db.exec("UPDATE audit_events SET seq = -1 WHERE seq = 4");
    await db.exec("UPDATE audit_events SET seq = 4 WHERE seq = 5");
    await db.exec("UPDATE audit_events SET seq = 5 WHERE seq = -1");
    expect(await audit.verify()).toEqual({ ok: false, reason: "altered", first_broken_seq: 4, count: 3 });
  });

  it.skipIf(skip)("keeps appending after the head: the chain stays valid across instances", async () => {
    const second = createAuditLog({ db, clock: frozenClock(), logger: silentLogger() });
    await second.record({ actor: "admin:root", action: "key.revoke", outcome: "success" });
    await second.close();
    expect(await audit.verify()).toMatchObject({ ok: true, count: 7 });
  });
});
