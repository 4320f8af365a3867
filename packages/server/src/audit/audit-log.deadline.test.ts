import { describe, expect, it } from "vitest";
import { openTestSqlite } from "../../test-support/databases.js";
import { frozenClock } from "../clock.js";
import { silentLogger } from "../ops/logger.js";
import { createMetrics, type Metrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import { type AuditEventInput, AuditWriteError, createAuditLog } from "./audit-log.js";

// Issue 18, finding 2: an audit write that stalls (a lock held by a frozen replica, a silent
// connection) neither errors nor ends. It must count as failed within the write deadline, so that
// fail-closed requests are refused instead of waiting on it or going out unaudited behind it.

const WRITE_TIMEOUT_MS = 80;

const event = (n: number, action = "token.mint"): AuditEventInput => ({
  actor: "consumer:acme",
  action,
  outcome: "success",
  requestId: `r${n}`,
});

const value = async (m: { get(): Promise<{ values: { value: number }[] }> }) => (await m.get()).values[0]?.value ?? 0;
const failures = (metrics: Metrics) => value(metrics.auditFailures);
const late = (metrics: Metrics) => value(metrics.auditLate);
/** The gauges as a scrape reads them. */
async function backlog(metrics: Metrics): Promise<{ events: number; oldestS: number }> {
  const text = await metrics.registry.metrics();
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
  return { events: read("keyward_audit_queue_length"), oldestS: read("keyward_audit_oldest_pending_seconds") };
}

/** A real database whose transactions wait until the test releases them: a stalled write. */
function stallingDb(db: Db) {
  let release!: () => void;
  let gate = new Promise<void>((r) => {
    release = r;
  });
  let stalled = true;
  const wrapped: Db = {
    engine: db.engine,
    query: db.query.bind(db),
    exec: db.exec.bind(db),
    ping: db.ping.bind(db),
    close: db.close.bind(db),
    transaction: async (fn, opts) => {
      if (stalled) await gate;
      return db.transaction(fn, opts);
    },
  };
  return {
    db: wrapped,
    /** Lets the stalled writes through, and the next ones straight away. */
    heal() {
      stalled = false;
      release();
    },
    /** Stalls the next writes again. */
    stall() {
      stalled = true;
      gate = new Promise<void>((r) => {
        release = r;
      });
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function setUp() {
  const sqlite = await openTestSqlite();
  const stall = stallingDb(sqlite);
  const metrics = createMetrics();
  const clock = frozenClock();
  const audit = createAuditLog({
    db: stall.db,
    clock,
    logger: silentLogger(),
    metrics,
    writeTimeoutMs: WRITE_TIMEOUT_MS,
  });
  return { sqlite, stall, metrics, clock, audit };
}

describe("audit log: a write that stalls", () => {
  it("fails record() within the write deadline, counts it, and shows the waiting event in the gauges when scraped", async () => {
    const { sqlite, stall, metrics, clock, audit } = await setUp();
    const started = performance.now();
    const pending = audit.record(event(1, "tool.call")).catch((e: unknown) => e);
    await sleep(10);
    clock.advance(1500);
    // Read live: the event being written shows, with its age.
    expect(await backlog(metrics)).toEqual({ events: 1, oldestS: 1.5 });
    const err = await pending;
    expect(err).toBeInstanceOf(AuditWriteError);
    expect((err as AuditWriteError).code).toBe("audit_unavailable");
    expect(performance.now() - started).toBeLessThan(WRITE_TIMEOUT_MS + 500);
    expect(await failures(metrics)).toBe(1);

    // It commits after all (the stall ends): counted as late, not as a second failure.
    stall.heal();
    await audit.flush();
    expect(await late(metrics)).toBe(1);
    expect(await failures(metrics)).toBe(1);
    expect(await backlog(metrics)).toEqual({ events: 0, oldestS: 0 });
    await audit.close();
    await sqlite.close();
  });

  it("lets tokens out ahead of their record only while the log keeps up; then each waits for its record and is refused at the deadline", async () => {
    const { sqlite, stall, metrics, clock, audit } = await setUp();
    // Healthy and idle: the token goes out at once, its record follows in the next batch.
    await expect(audit.recordToken(event(1))).resolves.toBeUndefined();
    await sleep(5);
    // That write is stuck. Within LAG (100 ms) the log is still taken to keep up…
    clock.advance(50);
    await expect(audit.recordToken(event(2))).resolves.toBeUndefined();
    // …past it, a token waits for its own record, which cannot commit: refused at the deadline.
    clock.advance(100);
    const started = performance.now();
    await expect(audit.recordToken(event(3))).rejects.toMatchObject({
      code: "audit_unavailable",
      message: "the audit log is failing; token not issued",
    });
    expect(performance.now() - started).toBeLessThan(WRITE_TIMEOUT_MS + 500);
    // The stuck batch (token 1's record) passed its deadline too: counted. The refused token's
    // record, still queued, is dropped (it names a token never issued); token 2's waits its turn.
    await sleep(WRITE_TIMEOUT_MS);
    expect(await failures(metrics)).toBe(2);
    expect((await backlog(metrics)).events).toBe(3);

    stall.heal();
    await audit.flush();
    // The late commit shows the log works: tokens go out ahead of their record again.
    await expect(audit.recordToken(event(4))).resolves.toBeUndefined();
    await audit.flush();
    const { events } = await audit.list({ limit: 10 });
    // Token 1's record landed late (counted as such), token 2's after it; token 3's was never
    // written.
    expect(events.map((e) => e.request_id)).toEqual(["r4", "r2", "r1"]);
    expect(await late(metrics)).toBe(1);
    await audit.close();
    await sqlite.close();
  });

  it("after a failure, a token waits for its own record; once one commits, tokens go ahead of their record again", async () => {
    const sqlite = await openTestSqlite();
    let broken = true;
    const db: Db = {
      engine: sqlite.engine,
      query: sqlite.query.bind(sqlite),
      exec: sqlite.exec.bind(sqlite),
      ping: sqlite.ping.bind(sqlite),
      close: sqlite.close.bind(sqlite),
      transaction: async (fn, opts) => {
        if (broken) throw new Error("disk I/O error");
        return sqlite.transaction(fn, opts);
      },
    };
    const metrics = createMetrics();
    const audit = createAuditLog({ db, clock: frozenClock(), logger: silentLogger(), metrics });
    await audit.record(event(0, "tool.call")).catch(() => {});
    expect(await failures(metrics)).toBe(1);
    // Still failing: the token waits for its record, which fails, so it is refused.
    await expect(audit.recordToken(event(1))).rejects.toBeInstanceOf(AuditWriteError);
    broken = false;
    // Writable again: the first token waits for its record, which has committed when it resolves…
    await audit.recordToken(event(2));
    expect((await audit.list({ limit: 1 })).events[0]?.request_id).toBe("r2");
    // …and from then on tokens go out ahead of their record: this one resolves before its write.
    await audit.recordToken(event(3));
    expect((await audit.list({ limit: 1 })).events[0]?.request_id).toBe("r2");
    await audit.flush();
    expect((await audit.list({ limit: 10 })).events.map((e) => e.request_id)).toEqual(["r3", "r2"]);
    await audit.close();
    await sqlite.close();
  });

  it("with audit_fail_closed=false, tokens never wait or fail", async () => {
    const sqlite = await openTestSqlite();
    const stall = stallingDb(sqlite);
    const metrics = createMetrics();
    const audit = createAuditLog({
      db: stall.db,
      clock: frozenClock(),
      logger: silentLogger(),
      metrics,
      writeTimeoutMs: WRITE_TIMEOUT_MS,
      failClosed: false,
    });
    await audit.record(event(0, "tool.call")).catch(() => {});
    await expect(audit.recordToken(event(1))).resolves.toBeUndefined();
    stall.heal();
    await audit.close();
    await sqlite.close();
  });
});
