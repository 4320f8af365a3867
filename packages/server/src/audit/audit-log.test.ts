import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { testEngines } from "../../test-support/databases.js";
import { frozenClock } from "../clock.js";
import { silentLogger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import { type AuditEventInput, type AuditLog, AuditWriteError, createAuditLog } from "./audit-log.js";

const denial = (n: number): AuditEventInput => ({
  actor: `consumer:c${n % 3}`,
  action: "gateway.deny",
  target: "agent:billing",
  outcome: "denied",
  code: "scope_denied",
  ip: "10.0.0.1",
  requestId: `req-${n}`,
});

describe.each(testEngines)("audit log on $name", ({ skip, open }) => {
  let db: Db;
  let audit: AuditLog;
  const clock = frozenClock();

  beforeEach(async () => {
    if (skip) return;
    db = await open();
    audit = createAuditLog({ db, clock, logger: silentLogger() });
  });
  afterEach(async () => {
    if (skip) return;
    await audit.close();
    await db.close();
  });

  it.skipIf(skip)("stores an event as it was given, with seq and time assigned", async () => {
    await audit.record({
      actor: "admin:root",
      action: "key.create",
      target: "key_1",
      outcome: "success",
      ip: "127.0.0.1",
      requestId: "req-1",
      details: { scopes: ["agent:billing"], expires_in: 60 },
    });
    const { events, next_cursor } = await audit.list({ limit: 10 });
    expect(next_cursor).toBeNull();
    expect(events).toEqual([
      {
        seq: 1,
        time: "2026-01-01T00:00:00.000Z",
        actor: "admin:root",
        action: "key.create",
        target: "key_1",
        outcome: "success",
        ip: "127.0.0.1",
        request_id: "req-1",
        details: { expires_in: 60, scopes: ["agent:billing"] },
      },
    ]);
  });

  it.skipIf(skip)("keeps seq dense and the chain valid under many concurrent record() calls", async () => {
    const spy = vi.spyOn(db, "transaction");
    await Promise.all(Array.from({ length: 200 }, (_, i) => audit.record(denial(i))));
    // Waves of callers that arrive while a batch is being written join the next batch.
    for (let wave = 0; wave < 5; wave++) {
      await Promise.all(Array.from({ length: 40 }, (_, i) => audit.record(denial(1000 + wave * 40 + i))));
    }
    const seqs: number[] = [];
    let cursor: string | undefined;
    do {
      const page = await audit.list({ limit: 1000, cursor });
      seqs.push(...page.events.map((e) => e.seq));
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    expect(seqs).toEqual(Array.from({ length: 400 }, (_, i) => 400 - i));
    expect(await audit.verify()).toMatchObject({ ok: true, count: 400 });
    // Group commit: far fewer transactions than events.
    expect(spy.mock.calls.length).toBeLessThanOrEqual(10);
  });

  it.skipIf(skip)("writes recordLater events off the caller's path and flush() waits for them", async () => {
    for (let i = 0; i < 50; i++) expect(audit.recordLater(denial(i))).toBeUndefined();
    await audit.flush();
    expect((await audit.list({ limit: 100 })).events).toHaveLength(50);
    await audit.flush();
  });

  it.skipIf(skip)("keeps the order events were queued in, across record and recordLater", async () => {
    audit.recordLater(denial(1));
    const recorded = audit.record(denial(2));
    audit.recordLater(denial(3));
    await recorded;
    await audit.flush();
    const { events } = await audit.list({ limit: 10 });
    expect(events.map((e) => e.request_id)).toEqual(["req-3", "req-2", "req-1"]);
  });

  it.skipIf(skip)("close() writes what was queued and refuses what comes after", async () => {
    audit.recordLater(denial(1));
    await audit.close();
    expect((await audit.list({ limit: 10 })).events).toHaveLength(1);
    await expect(audit.record(denial(2))).rejects.toBeInstanceOf(AuditWriteError);
    audit.recordLater(denial(3));
    await audit.flush();
    expect((await audit.list({ limit: 10 })).events).toHaveLength(1);
  });

  it.skipIf(skip)("rejects record() when the database is gone", async () => {
    const broken = createAuditLog({ db, clock, logger: silentLogger() });
    await broken.record(denial(1));
    await db.close();
    const err = await broken.record(denial(2)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuditWriteError);
    expect(err).toMatchObject({ code: "audit_unavailable" });
    db = await open(); // afterEach closes whatever db holds
    audit = createAuditLog({ db, clock, logger: silentLogger() });
  });
});
