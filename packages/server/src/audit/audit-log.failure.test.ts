import { describe, expect, it } from "vitest";
import { openTestSqlite } from "../../test-support/databases.js";
import { frozenClock } from "../clock.js";
import { createLogger, silentLogger } from "../ops/logger.js";
import { createMetrics, type Metrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import { type AuditEventInput, AuditWriteError, createAuditLog } from "./audit-log.js";

const event = (n: number): AuditEventInput => ({
  actor: "consumer:acme",
  action: "gateway.deny",
  outcome: "denied",
  requestId: `r${n}`,
});

async function failures(metrics: Metrics): Promise<number> {
  return (await metrics.auditFailures.get()).values[0]?.value ?? 0;
}

function capturingLogger() {
  const lines: { level: string; msg: string; [k: string]: unknown }[] = [];
  const logger = createLogger({
    level: "debug",
    destination: { write: (s: string) => void lines.push(JSON.parse(s)) },
  });
  return { logger, lines };
}

/** A database whose transactions all fail, as a full disk or a dropped connection would. */
function brokenDb(): Db {
  const fail = async (): Promise<never> => {
    throw new Error("disk I/O error");
  };
  return { engine: "sqlite", query: fail, exec: fail, transaction: fail, ping: fail, close: async () => {} };
}

/** Wraps a real database so transactions wait until the test opens the gate. */
function gatedDb(db: Db) {
  let open!: () => void;
  const gate = new Promise<void>((r) => {
    open = r;
  });
  let started = 0;
  const gated: Db = {
    engine: db.engine,
    query: db.query.bind(db),
    exec: db.exec.bind(db),
    ping: db.ping.bind(db),
    close: db.close.bind(db),
    transaction: async (fn) => {
      started++;
      await gate;
      return db.transaction(fn);
    },
  };
  return { db: gated, started: () => started, open };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe("audit log failures", () => {
  it("fails every event of a batch that cannot be written, and counts and logs it", async () => {
    const metrics = createMetrics();
    const { logger, lines } = capturingLogger();
    const audit = createAuditLog({ db: brokenDb(), clock: frozenClock(), logger, metrics });
    const a = audit.record(event(1)).catch((e: unknown) => e);
    audit.recordLater(event(2));
    const b = audit.record(event(3)).catch((e: unknown) => e);
    await audit.flush();
    expect(await a).toBeInstanceOf(AuditWriteError);
    expect(await b).toMatchObject({ code: "audit_unavailable", message: "audit record could not be written" });
    expect(await failures(metrics)).toBe(3);
    expect(lines.filter((l) => l.level === "error")).toEqual([
      expect.objectContaining({ msg: "audit events could not be written", events: 3 }),
    ]);
  });

  it("never throws from recordLater, even when nothing can be written", async () => {
    const audit = createAuditLog({ db: brokenDb(), clock: frozenClock(), logger: silentLogger() });
    expect(() => audit.recordLater(event(1))).not.toThrow();
    await audit.flush();
  });

  it("fails one event whose details cannot be read alone, not the batch it shares", async () => {
    const db = await openTestSqlite();
    const audit = createAuditLog({ db, clock: frozenClock(), logger: silentLogger() });
    const hostile = {
      get boom(): string {
        throw new Error("getter failed");
      },
    };
    const before = audit.record(event(1));
    const bad = audit.record({ ...event(2), details: hostile });
    const after = audit.record(event(3));
    await expect(bad).rejects.toBeInstanceOf(AuditWriteError);
    await expect(Promise.all([before, after])).resolves.toBeDefined();
    expect((await audit.list({ limit: 10 })).events.map((e) => e.request_id)).toEqual(["r3", "r1"]);
    await db.close();
  });

  it("makes bigints and cycles in details safe instead of failing", async () => {
    const db = await openTestSqlite();
    const audit = createAuditLog({ db, clock: frozenClock(), logger: silentLogger() });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await audit.record({ ...event(1), details: { big: 1n, cyclic } });
    expect((await audit.list({ limit: 10 })).events[0]?.details).toEqual({
      big: "1",
      cyclic: { self: { self: { self: { self: { self: { self: { self: "[truncated]" } } } } } } },
    });
    await db.close();
  });

  it("bounds the queue: record() rejects and recordLater() drops, counted, with one warning", async () => {
    const sqlite = await openTestSqlite();
    const gate = gatedDb(sqlite);
    const metrics = createMetrics();
    const { logger, lines } = capturingLogger();
    const audit = createAuditLog({ db: gate.db, clock: frozenClock(), logger, metrics, maxQueue: 2 });

    const first = audit.record(event(1));
    await tick(); // the writer has taken event 1 and waits on the gate
    expect(gate.started()).toBe(1);
    const queued = [audit.record(event(2)), audit.record(event(3))];
    await expect(audit.record(event(4))).rejects.toMatchObject({ message: "audit queue is full" });
    for (let i = 5; i < 10; i++) audit.recordLater(event(i));

    expect(await failures(metrics)).toBe(6);
    expect(lines.filter((l) => l.level === "warn")).toEqual([
      expect.objectContaining({ msg: "audit events refused", reason: "queue_full", dropped: 1 }),
    ]);

    gate.open();
    await first;
    await Promise.all(queued);
    // The second batch took both queued events at once.
    expect(gate.started()).toBe(2);
    const { events } = await audit.list({ limit: 10 });
    expect(events.map((e) => e.request_id)).toEqual(["r3", "r2", "r1"]);
    await audit.close();
    await sqlite.close();
  });

  it("flush() resolves at once when nothing is queued", async () => {
    const audit = createAuditLog({ db: brokenDb(), clock: frozenClock(), logger: silentLogger() });
    await expect(audit.flush()).resolves.toBeUndefined();
  });
});
