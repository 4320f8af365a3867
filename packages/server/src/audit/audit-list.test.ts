import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { testEngines } from "../../test-support/databases.js";
import { frozenClock } from "../clock.js";
import { KeywardError } from "../errors.js";
import { silentLogger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import { type AuditEvent, type AuditListQuery, type AuditLog, createAuditLog } from "./audit-log.js";

const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;

describe.each(testEngines)("audit list on $name", ({ skip, open }) => {
  let db: Db;
  let audit: AuditLog;
  const clock = frozenClock(T0);

  beforeEach(async () => {
    if (skip) return;
    db = await open();
    clock.set(T0);
    audit = createAuditLog({ db, clock, logger: silentLogger() });
    // One event a minute: seq n happens at T0 + (n-1) minutes.
    const plan: [actor: string, action: string, target: string | undefined][] = [
      ["admin:root", "agent.create", "agent:billing"],
      ["admin:root", "key.create", "key_a"],
      ["consumer:acme", "gateway.deny", "agent:billing"],
      ["agent:billing", "credential.read", "credential:stripe"],
      ["admin:ops", "key.revoke", "key_a"],
      ["consumer:acme", "gateway.deny", "agent:search"],
      ["system", "key.freeze", "consumer:acme"],
    ];
    for (const [actor, action, target] of plan) {
      await audit.record({ actor, action, outcome: "success", ...(target ? { target } : {}) });
      clock.advance(MIN);
    }
  });
  afterEach(async () => {
    if (skip) return;
    await audit.close();
    await db.close();
  });

  const seqs = async (q: Omit<AuditListQuery, "limit">) =>
    (await audit.list({ limit: 100, ...q })).events.map((e) => e.seq);

  it.skipIf(skip)("lists newest first", async () => {
    expect(await seqs({})).toEqual([7, 6, 5, 4, 3, 2, 1]);
  });

  it.skipIf(skip)("filters by time: since inclusive, until exclusive", async () => {
    expect(await seqs({ since: T0 + 2 * MIN })).toEqual([7, 6, 5, 4, 3]);
    expect(await seqs({ until: T0 + 2 * MIN })).toEqual([2, 1]);
    expect(await seqs({ since: T0 + MIN, until: T0 + 3 * MIN })).toEqual([3, 2]);
  });

  it.skipIf(skip)("filters by action", async () => {
    expect(await seqs({ action: "gateway.deny" })).toEqual([6, 3]);
    expect(await seqs({ action: "gateway" })).toEqual([]);
  });

  it.skipIf(skip)("matches a principal as actor or as target", async () => {
    expect(await seqs({ principal: "consumer:acme" })).toEqual([7, 6, 3]);
    expect(await seqs({ principal: "agent:billing" })).toEqual([4, 3, 1]);
    expect(await seqs({ principal: "key_a", action: "key.revoke" })).toEqual([5]);
  });

  it.skipIf(skip)("pages without duplicates or gaps, even while events are appended", async () => {
    const seen: AuditEvent[] = [];
    let cursor: string | undefined;
    for (let guard = 0; guard < 10; guard++) {
      const page = await audit.list({ limit: 2, cursor });
      seen.push(...page.events);
      // Newer events land above the first page; they must not shift later pages.
      await audit.record({ actor: "admin:root", action: "key.create", outcome: "success" });
      if (!page.next_cursor) break;
      expect(page.events).toHaveLength(2);
      cursor = page.next_cursor;
    }
    expect(seen.map((e) => e.seq)).toEqual([7, 6, 5, 4, 3, 2, 1]);
  });

  it.skipIf(skip)("pages within a filter and ends with a null cursor", async () => {
    const first = await audit.list({ limit: 2, principal: "consumer:acme" });
    expect(first.events.map((e) => e.seq)).toEqual([7, 6]);
    const second = await audit.list({ limit: 2, principal: "consumer:acme", cursor: first.next_cursor ?? "" });
    expect(second).toMatchObject({ events: [{ seq: 3 }], next_cursor: null });
  });

  it.skipIf(skip)("gives no cursor when the last page is exactly full", async () => {
    expect((await audit.list({ limit: 7 })).next_cursor).toBeNull();
  });

  it.skipIf(skip)("refuses a cursor it did not issue", async () => {
    for (const cursor of ["nope", "YTA", Buffer.from("a1 OR 1=1").toString("base64url"), "YTE="]) {
      const err = await audit.list({ limit: 2, cursor }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KeywardError);
      expect(err).toMatchObject({ code: "invalid_request" });
    }
  });

  it.skipIf(skip)("returns times as RFC 3339 and leaves absent fields out", async () => {
    const [e] = (await audit.list({ limit: 1, cursor: (await audit.list({ limit: 6 })).next_cursor ?? "" })).events;
    expect(e).toEqual({
      seq: 1,
      time: "2026-01-01T00:00:00.000Z",
      actor: "admin:root",
      action: "agent.create",
      target: "agent:billing",
      outcome: "success",
    });
  });
});
