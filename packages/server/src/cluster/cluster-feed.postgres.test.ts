import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startRelay } from "../../test-support/tcp-relay.js";
import { auditedChange, changeEvent } from "../admin/audited-change.js";
import { createAuditLog } from "../audit/audit-log.js";
import { systemClock } from "../clock.js";
import { silentLogger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import { migrate } from "../store/migrations.js";
import { openPostgres } from "../store/postgres.js";
import type { Change, ChangeKind } from "./change-feed.js";
import type { ChangeTransport } from "./change-message.js";
import { type ChangesStore, createChangesStore } from "./changes-store.js";
import { type ClusterChangeFeed, createClusterChangeFeed } from "./cluster-feed.js";
import { createPgNotifyTransport } from "./pg-notify-transport.js";
import { createRedisTransport } from "./redis-transport.js";

const pgUrl = process.env.KEYWARD_TEST_DATABASE_URL;
const redisUrl = process.env.KEYWARD_TEST_REDIS_URL;
if (!pgUrl) console.warn("[cluster] change feed tests skipped: KEYWARD_TEST_DATABASE_URL is not set");

/** A transport that delivers nothing: only reconciliation can bring changes. */
function deafTransport(): ChangeTransport {
  return { name: "redis", send: async () => {}, start: () => {}, ready: async () => {}, close: async () => {} };
}

/** Resolves with the refs a feed's handler sees, once `count` arrived. */
function collect(feed: ClusterChangeFeed, kind: ChangeKind) {
  const seen: string[] = [];
  const waiters: Array<() => void> = [];
  feed.on(kind, (ref) => {
    seen.push(ref);
    for (const w of waiters.splice(0)) w();
  });
  return {
    seen,
    async until(count: number): Promise<string[]> {
      while (seen.length < count) await new Promise<void>((r) => waiters.push(r));
      return seen;
    },
  };
}

describe.skipIf(!pgUrl)("the replicated change feed (PostgreSQL)", () => {
  const schema = `kwt_feed_${randomBytes(5).toString("hex")}`;
  let db: Db;
  let store: ChangesStore;
  const feeds: ClusterChangeFeed[] = [];

  function feed(
    transport: ChangeTransport,
    opts: { interval?: number; staleness?: number; store?: ChangesStore } = {},
  ) {
    const f = createClusterChangeFeed({
      store: opts.store ?? store,
      transport,
      clock: systemClock,
      logger: silentLogger(),
      reconcileIntervalMs: opts.interval ?? 60_000,
      maxStalenessMs: opts.staleness ?? 120_000,
    });
    feeds.push(f);
    return f;
  }

  async function commit(...changes: Change[]): Promise<void> {
    await db.transaction(async (tx) => {
      for (const c of changes) await store.append(tx, c, Date.now());
    });
  }

  beforeAll(async () => {
    db = await openPostgres(pgUrl as string, { schema, max: 6 });
    await migrate(db);
    store = createChangesStore(db);
  });
  afterEach(async () => {
    for (const f of feeds.splice(0)) await f.close();
    await db.exec("DELETE FROM changes");
  });
  afterAll(async () => {
    await db?.exec(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
    await db?.close();
  });

  it("numbers changes in commit order: a later transaction waits for an earlier one's commit", async () => {
    const pidOf = async (tx: Db) => (await tx.query<{ pid: number }>("SELECT pg_backend_pid() AS pid"))[0]?.pid;
    // Advisory locks are database-wide (other test files use them too): look at our backends only.
    const lockOf = async (pid: number | undefined, granted: boolean) =>
      Number(
        (
          await db.query<{ n: number }>(
            "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = $1 AND granted = ($2 = 1)",
            [pid ?? -1, granted ? 1 : 0],
          )
        )[0]?.n,
      );
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    let firstPid: number | undefined;
    const first = db.transaction(async (tx) => {
      firstPid = await pidOf(tx);
      await store.append(tx, { kind: "key", ref: "first" }, Date.now());
      await held;
    });
    while ((await lockOf(firstPid, true)) === 0) await new Promise((r) => setImmediate(r));
    let secondPid: number | undefined;
    let secondDone = false;
    const second = db
      .transaction(async (tx) => {
        secondPid = await pidOf(tx);
        await store.append(tx, { kind: "key", ref: "second" }, Date.now());
      })
      .then(() => {
        secondDone = true;
      });
    while ((await lockOf(secondPid, false)) === 0) await new Promise((r) => setImmediate(r));
    expect(secondDone).toBe(false);
    release();
    await Promise.all([first, second]);
    expect(await store.after(0, 10)).toEqual([
      { seq: 1, kind: "key", ref: "first" },
      { seq: 2, kind: "key", ref: "second" },
    ]);
  });

  it("a rolled-back change leaves no hole: seqs stay dense", async () => {
    await commit({ kind: "key", ref: "a" });
    await expect(
      db.transaction(async (tx) => {
        await store.append(tx, { kind: "key", ref: "never" }, Date.now());
        throw new Error("abort");
      }),
    ).rejects.toThrow("abort");
    await commit({ kind: "key", ref: "b" });
    expect((await store.after(0, 10)).map((r) => [r.seq, r.ref])).toEqual([
      [1, "a"],
      [2, "b"],
    ]);
  });

  it("reconciliation applies, in order and once, what no message delivered", async () => {
    const b = feed(deafTransport());
    const keys = collect(b, "key");
    await b.start();
    await commit({ kind: "key", ref: "k1" }, { kind: "agent", ref: "echo" });
    await commit({ kind: "key", ref: "k2" });
    await b.reconcile();
    expect(keys.seen).toEqual(["k1", "k2"]);
    await b.reconcile();
    expect(keys.seen).toEqual(["k1", "k2"]);
  });

  it("starts at the head of the log: history is not replayed into empty caches", async () => {
    await commit({ kind: "key", ref: "old" });
    const b = feed(deafTransport());
    const keys = collect(b, "key");
    await b.start();
    await b.reconcile();
    expect(keys.seen).toEqual([]);
  });

  it("drops everything when the log was pruned past what it applied", async () => {
    const b = feed(deafTransport());
    const keys = collect(b, "key");
    let resets = 0;
    b.onReset(() => resets++);
    await b.start();
    await commit({ kind: "key", ref: "k1" });
    await commit({ kind: "key", ref: "k2" });
    await commit({ kind: "key", ref: "k3" });
    // Everything older than now, except the newest row (seq must go on from it).
    expect(await store.prune(Date.now() + 1000)).toBe(2);
    await b.reconcile();
    expect(resets).toBe(1);
    expect(keys.seen).toEqual(["k3"]);
    await commit({ kind: "key", ref: "k4" });
    expect((await store.after(0, 10)).map((r) => r.seq)).toEqual([3, 4]);
  });

  it("after max_staleness_ms without a readable log, drops its caches on every tick", async () => {
    let failing = false;
    const flaky: ChangesStore = {
      ...store,
      head: () => (failing ? Promise.reject(new Error("down")) : store.head()),
      after: (seq, limit) => (failing ? Promise.reject(new Error("down")) : store.after(seq, limit)),
    };
    const b = feed(deafTransport(), { interval: 20, staleness: 100, store: flaky });
    let resets = 0;
    let resetSeen: () => void = () => {};
    b.onReset(() => {
      resets++;
      if (resets >= 2) resetSeen();
    });
    await b.start();
    failing = true;
    const failedAt = Date.now();
    await new Promise<void>((r) => (resetSeen = r));
    expect(Date.now() - failedAt).toBeGreaterThanOrEqual(80);
    failing = false;
    await b.reconcile();
    const after = resets;
    await b.reconcile();
    expect(resets).toBe(after);
  });

  it("an admin change records, commits, then publishes; a failed publish marks the response pending", async () => {
    const broken: ChangeTransport = { ...deafTransport(), send: () => Promise.reject(new Error("redis down")) };
    const a = feed(broken);
    const local = collect(a, "agent");
    await a.start();
    const audit = createAuditLog({ db, clock: systemClock, logger: silentLogger() });
    let pending = 0;
    const actor = { principal: "admin:t", propagationPending: () => pending++ };
    const result = await auditedChange(
      db,
      audit,
      async () => ({
        result: "done",
        event: changeEvent(actor, "agent.update", "agent:echo"),
        changes: [{ kind: "agent", ref: "echo" }],
      }),
      { feed: a, actor },
    );
    expect(result).toBe("done");
    expect(pending).toBe(1);
    expect(local.seen).toEqual(["echo"]);
    expect((await store.after(0, 10)).map((r) => r.ref)).toEqual(["echo"]);
    await audit.close();
  });

  it("a change whose transaction fails is neither recorded nor published", async () => {
    const a = feed(deafTransport());
    const local = collect(a, "agent");
    await a.start();
    const audit = createAuditLog({ db, clock: systemClock, logger: silentLogger() });
    const actor = { principal: "admin:t" };
    await expect(
      auditedChange(
        db,
        audit,
        async (tx) => {
          await tx.exec("INSERT INTO agents (name, upstream, created_at, updated_at) VALUES ('x', 'http://x', 1, 1)");
          await tx.exec("INSERT INTO agents (name, upstream, created_at, updated_at) VALUES ('x', 'http://x', 1, 1)");
          return {
            result: 1,
            event: changeEvent(actor, "agent.create", "agent:x"),
            changes: [{ kind: "agent", ref: "x" }],
          };
        },
        { feed: a, actor },
      ),
    ).rejects.toMatchObject({ code: "23505" });
    expect(local.seen).toEqual([]);
    expect(await store.after(0, 10)).toEqual([]);
    await audit.close();
  });

  it("LISTEN/NOTIFY carries changes to another replica and survives a lost connection", async () => {
    const target = new URL(pgUrl as string);
    const relay = await startRelay({ host: target.hostname, port: Number(target.port || 5432) });
    target.hostname = "127.0.0.1";
    target.port = String(relay.port);
    try {
      const channel = `keyward_changes_t${randomBytes(4).toString("hex")}`;
      const a = feed(createPgNotifyTransport(pgUrl as string, channel, db, silentLogger()));
      const bTransport = createPgNotifyTransport(target.toString(), channel, db, silentLogger());
      let subscribed = 0;
      let onSubscribed: () => void = () => {};
      const start = bTransport.start.bind(bTransport);
      bTransport.start = (onMessage, sub) =>
        start(onMessage, () => {
          subscribed++;
          onSubscribed();
          sub();
        });
      const b = feed(bTransport);
      const keys = collect(b, "key");
      const waitSubscribed = (n: number) =>
        new Promise<void>((resolve) => {
          onSubscribed = () => subscribed >= n && resolve();
          onSubscribed();
        });
      await Promise.all([a.start(), b.start()]);
      await waitSubscribed(1);
      expect(await a.publish([{ kind: "key", ref: "k1" }])).toBe(true);
      expect(await keys.until(1)).toEqual(["k1"]);

      await relay.cut();
      await relay.restore();
      await waitSubscribed(2);
      expect(await a.publish([{ kind: "key", ref: "k2" }])).toBe(true);
      expect(await keys.until(2)).toEqual(["k1", "k2"]);
    } finally {
      await relay.close();
    }
  });

  it.skipIf(!redisUrl)("Redis pub/sub carries changes to another replica, not back to the sender", async () => {
    const channel = `keyward:changes:t${randomBytes(4).toString("hex")}`;
    let subscribed: () => void = () => {};
    const bSubscribed = new Promise<void>((r) => (subscribed = r));
    const bTransport = createRedisTransport(redisUrl as string, channel, silentLogger());
    const start = bTransport.start.bind(bTransport);
    bTransport.start = (onMessage, sub) =>
      start(onMessage, () => {
        subscribed();
        sub();
      });
    const a = feed(createRedisTransport(redisUrl as string, channel, silentLogger()));
    const b = feed(bTransport);
    const onA = collect(a, "key");
    const onB = collect(b, "key");
    await Promise.all([a.start(), b.start()]);
    await bSubscribed;
    // A's publisher may still be connecting: a failed publish says so (and is retried here).
    while (!(await a.publish([{ kind: "key", ref: "k1" }]))) await new Promise((r) => setTimeout(r, 20));
    expect(await onB.until(1)).toEqual(["k1"]);
    expect(onA.seen.every((r) => r === "k1")).toBe(true);
  });
});
