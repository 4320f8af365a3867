import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Actor } from "../admin/admin-context.js";
import { createAgentsStore } from "../agents/agents-store.js";
import { type Clock, frozenClock, systemClock } from "../clock.js";
import { createConsumersStore } from "../consumers/consumers-store.js";
import { createIntegrityKeys } from "../crypto/integrity-keys.js";
import { hashSecret, isWellFormed, secretPrefix } from "../crypto/secret-format.js";
import { KeywardError } from "../errors.js";
import { createUsageTracker } from "../limits/usage.js";

const INTEGRITY = createIntegrityKeys(Buffer.alloc(32, 5));

import { testEngines } from "../../test-support/databases.js";
import { recordingAudit } from "../../test-support/recording-audit.js";
import { createKeysService, type KeysService } from "../keys/keys-service.js";
import { createKeysStore, type KeyRow, type KeysStore } from "../keys/keys-store.js";
import { silentLogger } from "../ops/logger.js";
import { type Db, isUniqueViolation, queryOne } from "./db.js";
import { MIGRATIONS, migrate } from "./migrations.js";

/**
 * One suite, both engines: the Db contract every store relies on, then the domain stores and
 * services on top of it. A behaviour that differs between engines is a bug in an engine.
 */

const T0 = Date.UTC(2026, 0, 1);
const EPOCH_MS = 1_900_000_000_000;
const actor: Actor = { principal: "admin:test", requestId: "req-1" };

for (const e of testEngines) {
  if (e.skip) console.warn(`[store conformance] ${e.name} skipped: ${e.skip}`);
}

/** A scratch table covering every column type the stores use. */
async function createScratch(db: Db): Promise<void> {
  const blob = db.engine === "sqlite" ? "BLOB" : "BYTEA";
  await db.exec(
    `CREATE TABLE scratch (id TEXT PRIMARY KEY, u TEXT UNIQUE, n BIGINT, b ${blob}, s TEXT, flag INTEGER NOT NULL DEFAULT 0)`,
  );
  await db.exec("CREATE TABLE counter (id TEXT PRIMARY KEY, n BIGINT NOT NULL)");
  await db.exec("INSERT INTO counter (id, n) VALUES ('c', 0)");
}

const counterValue = async (db: Db) => (await queryOne<{ n: number }>(db, "SELECT n FROM counter WHERE id = 'c'"))?.n;
const ids = async (db: Db) => (await db.query<{ id: string }>("SELECT id FROM scratch ORDER BY id")).map((r) => r.id);

describe.each(testEngines)("Db contract on $name", ({ skip, open }) => {
  let db: Db;
  beforeEach(async () => {
    if (skip) return;
    db = await open();
    await createScratch(db);
  });
  afterEach(async () => {
    if (skip) return;
    await db.close();
  });

  describe.skipIf(skip)("statements", () => {
    it("binds $n placeholders by number: reused and out of order", async () => {
      await db.exec("INSERT INTO scratch (s, id, u) VALUES ($2, $1, $1)", ["row-1", "text-1"]);
      const row = await queryOne<{ id: string; u: string; s: string }>(
        db,
        "SELECT id, u, s FROM scratch WHERE id = $1 AND u = $1 AND s = $2",
        ["row-1", "text-1"],
      );
      expect(row).toEqual({ id: "row-1", u: "row-1", s: "text-1" });
    });

    it("binds $10 and beyond distinctly from $1", async () => {
      const names = Array.from({ length: 12 }, (_, i) => `id-${String(i + 1).padStart(2, "0")}`);
      for (const id of names) await db.exec("INSERT INTO scratch (id) VALUES ($1)", [id]);
      // $2…$9 name rows that exist but are excluded, so a $1/$10 mix-up shows as a wrong result.
      const rows = await db.query<{ id: string }>(
        "SELECT id FROM scratch WHERE id IN ($12, $10, $11, $1) AND id NOT IN ($2, $3, $4, $5, $6, $7, $8, $9) ORDER BY id",
        names,
      );
      expect(rows.map((r) => r.id)).toEqual(["id-01", "id-10", "id-11", "id-12"]);
    });

    it("round-trips BIGINT epoch milliseconds as JS numbers", async () => {
      const values = [EPOCH_MS, 0, -1, Number.MAX_SAFE_INTEGER];
      for (const [i, n] of values.entries()) await db.exec("INSERT INTO scratch (id, n) VALUES ($1, $2)", [`r${i}`, n]);
      const rows = await db.query<{ n: unknown }>("SELECT n FROM scratch ORDER BY id");
      expect(rows.map((r) => r.n)).toEqual(values);
      for (const r of rows) expect(typeof r.n).toBe("number");
      const found = await db.query("SELECT id FROM scratch WHERE n > $1", [EPOCH_MS - 1]);
      expect(found).toHaveLength(2);
    });

    it("returns COUNT(*) and MAX(bigint) as numbers", async () => {
      await db.exec("INSERT INTO scratch (id, n) VALUES ('a', $1), ('b', $2)", [EPOCH_MS, EPOCH_MS + 5]);
      const row = await queryOne<{ c: unknown; m: unknown }>(db, "SELECT COUNT(*) AS c, MAX(n) AS m FROM scratch");
      expect(row).toEqual({ c: 2, m: EPOCH_MS + 5 });
    });

    it("round-trips BLOB/BYTEA as Buffer, byte for byte", async () => {
      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await db.exec("INSERT INTO scratch (id, b) VALUES ($1, $2)", ["blob", bytes]);
      await db.exec("INSERT INTO scratch (id, b) VALUES ($1, $2)", ["empty", Buffer.alloc(0)]);
      const rows = await db.query<{ id: string; b: unknown }>("SELECT id, b FROM scratch ORDER BY id");
      expect(rows.map((r) => Buffer.isBuffer(r.b))).toEqual([true, true]);
      const [full, empty] = rows.map((r) => r.b as Buffer);
      expect(full?.equals(bytes)).toBe(true);
      expect(empty?.length).toBe(0);
    });

    it("round-trips NULL as null (never undefined) and keeps '' distinct from NULL", async () => {
      await db.exec("INSERT INTO scratch (id, u, n, b, s) VALUES ($1, $2, $3, $4, $5)", ["x", null, null, null, ""]);
      const row = await queryOne(db, "SELECT u, n, b, s FROM scratch WHERE id = $1", ["x"]);
      expect(row).toEqual({ u: null, n: null, b: null, s: "" });
      expect(await db.query("SELECT id FROM scratch WHERE s IS NULL")).toEqual([]);
    });

    it("round-trips non-ASCII text", async () => {
      const s = 'ünïcødé — 日本語 🔑 \\ "quoted" \t tab';
      await db.exec("INSERT INTO scratch (id, s) VALUES ($1, $2)", ["t", s]);
      expect((await queryOne<{ s: string }>(db, "SELECT s FROM scratch WHERE id = 't'"))?.s).toBe(s);
    });

    it("INSERT/UPDATE … RETURNING return the written rows; query() of a plain write returns []", async () => {
      const inserted = await db.query("INSERT INTO scratch (id, n, s) VALUES ($1, $2, $3) RETURNING id, n, s", [
        "r",
        EPOCH_MS,
        "v",
      ]);
      expect(inserted).toEqual([{ id: "r", n: EPOCH_MS, s: "v" }]);
      const updated = await db.query("UPDATE scratch SET n = n + 1 WHERE id = $1 RETURNING n", ["r"]);
      expect(updated).toEqual([{ n: EPOCH_MS + 1 }]);
      expect(await db.query("UPDATE scratch SET n = 0 WHERE id = $1 RETURNING n", ["missing"])).toEqual([]);
      expect(await db.query("DELETE FROM scratch WHERE id = $1", ["missing"])).toEqual([]);
    });

    it("exec() returns how many rows a statement changed", async () => {
      expect(await db.exec("INSERT INTO scratch (id, n) VALUES ('a', 1), ('b', 1), ('c', 2)")).toBe(3);
      expect(await db.exec("UPDATE scratch SET s = 'x' WHERE n = $1", [1])).toBe(2);
      // Rows matched but left equal still count on both engines.
      expect(await db.exec("UPDATE scratch SET s = 'x' WHERE n = $1", [1])).toBe(2);
      expect(await db.exec("UPDATE scratch SET s = 'y' WHERE id = $1", ["nope"])).toBe(0);
      expect(await db.exec("DELETE FROM scratch WHERE n = $1", [2])).toBe(1);
      expect(await db.exec("DELETE FROM scratch")).toBe(2);
    });

    it("isUniqueViolation recognises duplicate primary keys and UNIQUE columns, nothing else", async () => {
      await db.exec("INSERT INTO scratch (id, u) VALUES ('a', 'u1')");
      const dupPk = await db.exec("INSERT INTO scratch (id, u) VALUES ('a', 'u2')").catch((err: unknown) => err);
      const dupUnique = await db.exec("INSERT INTO scratch (id, u) VALUES ('b', 'u1')").catch((err: unknown) => err);
      const notNull = await db.exec("INSERT INTO scratch (id, flag) VALUES ('c', NULL)").catch((err: unknown) => err);
      const syntax = await db.exec("INSERT INTO nowhere VALUES (1)").catch((err: unknown) => err);
      expect(isUniqueViolation(dupPk)).toBe(true);
      expect(isUniqueViolation(dupUnique)).toBe(true);
      expect(notNull).toBeInstanceOf(Error);
      expect(isUniqueViolation(notNull)).toBe(false);
      expect(isUniqueViolation(syntax)).toBe(false);
      expect(isUniqueViolation(null)).toBe(false);
      expect(isUniqueViolation("23505")).toBe(false);
      expect(await ids(db)).toEqual(["a"]);
    });

    it("ON CONFLICT … DO UPDATE upserts, as the usage tracker writes quota counters", async () => {
      const upsert =
        "INSERT INTO quota_usage (key_id, period_start, used) VALUES ($1, $2, $3) ON CONFLICT (key_id, period_start) DO UPDATE SET used = quota_usage.used + excluded.used";
      expect(await db.exec(upsert, ["k1", 0, 3])).toBe(1);
      expect(await db.exec(upsert, ["k1", 0, 4])).toBe(1);
      await db.exec(upsert, ["k1", EPOCH_MS, 1]);
      // Many writers at once (separate transactions) still add up.
      await Promise.all(Array.from({ length: 20 }, () => db.transaction((tx) => tx.exec(upsert, ["k2", 0, 1]))));
      const rows = await db.query("SELECT key_id, period_start, used FROM quota_usage ORDER BY key_id, period_start");
      expect(rows).toEqual([
        { key_id: "k1", period_start: 0, used: 7 },
        { key_id: "k1", period_start: EPOCH_MS, used: 1 },
        { key_id: "k2", period_start: 0, used: 20 },
      ]);
    });

    it("ping() answers on a live store", async () => {
      await expect(db.ping()).resolves.toBeUndefined();
    });
  });

  describe.skipIf(skip)("transactions", () => {
    it("commits everything fn wrote and returns its value", async () => {
      const result = await db.transaction(async (tx) => {
        await tx.exec("INSERT INTO scratch (id) VALUES ('a')");
        await tx.exec("INSERT INTO scratch (id) VALUES ('b')");
        return (await tx.query("SELECT id FROM scratch")).length;
      });
      expect(result).toBe(2);
      expect(await ids(db)).toEqual(["a", "b"]);
    });

    it("rolls back everything when fn throws, and rethrows the same error", async () => {
      await db.exec("INSERT INTO scratch (id) VALUES ('before')");
      const boom = new Error("boom");
      const err = await db
        .transaction(async (tx) => {
          await tx.exec("INSERT INTO scratch (id) VALUES ('a')");
          await tx.exec("UPDATE scratch SET s = 'changed' WHERE id = 'before'");
          await tx.exec("UPDATE counter SET n = n + 1");
          throw boom;
        })
        .catch((e: unknown) => e);
      expect(err).toBe(boom);
      expect(await ids(db)).toEqual(["before"]);
      expect((await queryOne<{ s: unknown }>(db, "SELECT s FROM scratch"))?.s).toBeNull();
      expect(await counterValue(db)).toBe(0);
    });

    it("rolls back when a statement inside fails (unique violation) and the store stays usable", async () => {
      await db.exec("INSERT INTO scratch (id) VALUES ('dup')");
      const err = await db
        .transaction(async (tx) => {
          await tx.exec("INSERT INTO scratch (id) VALUES ('fresh')");
          await tx.exec("INSERT INTO scratch (id) VALUES ('dup')");
        })
        .catch((e: unknown) => e);
      expect(isUniqueViolation(err)).toBe(true);
      expect(await ids(db)).toEqual(["dup"]);
      await db.transaction((tx) => tx.exec("INSERT INTO scratch (id) VALUES ('after')"));
      expect(await ids(db)).toEqual(["after", "dup"]);
    });

    it("a nested transaction joins the outer one: it commits and rolls back with it", async () => {
      await db.transaction(async (tx) => {
        await tx.exec("INSERT INTO scratch (id) VALUES ('outer')");
        await tx.transaction(async (inner) => {
          // The inner unit sees the outer's uncommitted write: same transaction.
          expect(await inner.query("SELECT id FROM scratch")).toEqual([{ id: "outer" }]);
          await inner.exec("INSERT INTO scratch (id) VALUES ('inner')");
        });
      });
      expect(await ids(db)).toEqual(["inner", "outer"]);

      const err = await db
        .transaction(async (tx) => {
          await tx.transaction((inner) => inner.exec("INSERT INTO scratch (id) VALUES ('inner-2')"));
          throw new Error("outer fails after the inner unit finished");
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(await ids(db)).toEqual(["inner", "outer"]);
    });

    it("concurrent transactions incrementing one counter lose no update", async () => {
      const workers = 4;
      const perWorker = 50;
      await Promise.all(
        Array.from({ length: workers }, () =>
          db.transaction(async (tx) => {
            for (let i = 0; i < perWorker; i++) await tx.exec("UPDATE counter SET n = n + 1 WHERE id = 'c'");
          }),
        ),
      );
      expect(await counterValue(db)).toBe(workers * perWorker);

      // And fifty one-increment transactions at once, interleaved with plain statements.
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          i % 5 === 0
            ? db.exec("UPDATE counter SET n = n + 1 WHERE id = 'c'")
            : db.transaction((tx) => tx.exec("UPDATE counter SET n = n + 1 WHERE id = 'c'")),
        ),
      );
      expect(await counterValue(db)).toBe(workers * perWorker + 50);
    });

    it("statements outside an open transaction neither see nor join its writes, and survive its rollback", async () => {
      let outside: Promise<[number, { id: string }[], number]> | undefined;
      const err = await db
        .transaction(async (tx) => {
          await tx.exec("INSERT INTO scratch (id) VALUES ('tx-write')");
          await tx.exec("UPDATE counter SET n = 100 WHERE id = 'c'");
          // Issued while the transaction is open; not awaited here (an engine may make them wait
          // for it to end — that is allowed, joining it is not).
          outside = Promise.all([
            db.exec("INSERT INTO scratch (id) VALUES ('outside-write')"),
            db.query<{ id: string }>("SELECT id FROM scratch WHERE id = 'tx-write'"),
            db.exec("UPDATE scratch SET s = 'seen' WHERE id = 'tx-write'"),
          ]);
          // PostgreSQL runs them on other connections right away: await them while the transaction
          // is still open. SQLite makes them wait for its end (awaiting here would deadlock).
          if (db.engine === "postgres") await outside;
          throw new Error("roll back");
        })
        .catch((e: unknown) => e);
      expect((err as Error).message).toBe("roll back");
      const [inserted, seen, updated] = await (outside as NonNullable<typeof outside>);
      expect(inserted).toBe(1);
      expect(seen).toEqual([]);
      expect(updated).toBe(0);
      expect(await ids(db)).toEqual(["outside-write"]);
      expect(await counterValue(db)).toBe(0);
    });

    it("a transaction handle refuses statements once its transaction has ended", async () => {
      let leaked: Db | undefined;
      await db.transaction(async (tx) => {
        leaked = tx;
        await tx.exec("INSERT INTO scratch (id) VALUES ('in')");
      });
      // A statement on a finished transaction must fail loudly, not run somewhere else
      // (on PostgreSQL, on a pooled connection that another caller may be using).
      await expect((leaked as Db).exec("INSERT INTO scratch (id) VALUES ('late')")).rejects.toThrow();
      expect(await ids(db)).toEqual(["in"]);
    });
  });

  describe.skipIf(skip)("migrations", () => {
    it("migrate() again is a no-op that keeps the data", async () => {
      await db.exec("INSERT INTO agents (name, upstream, created_at, updated_at) VALUES ('a', 'http://x', 1, 1)");
      await migrate(db);
      await Promise.all([migrate(db), migrate(db)]);
      const applied = await db.query<{ id: number }>("SELECT id FROM keyward_migrations ORDER BY id");
      expect(applied.map((r) => Number(r.id))).toEqual(MIGRATIONS.map((m) => m.id));
      expect(await db.query("SELECT name FROM agents")).toEqual([{ name: "a" }]);
    });
  });
});

type Settled<T> = { ok: true; v: T } | { ok: false; err: unknown };
const settle = <T>(p: Promise<T>): Promise<Settled<T>> =>
  p.then(
    (v) => ({ ok: true as const, v }),
    (err: unknown) => ({ ok: false as const, err }),
  );

/** Walks a keyset-paged list to the end; returns every page. */
async function walk<T>(list: (after: string | undefined) => Promise<T[]>, limit: number, keyOf: (r: T) => string) {
  const pages: T[][] = [];
  let after: string | undefined;
  for (;;) {
    const rows = await list(after);
    expect(rows.length).toBeLessThanOrEqual(limit + 1);
    const page = rows.slice(0, limit);
    pages.push(page);
    if (rows.length <= limit) return pages;
    after = keyOf(page[page.length - 1] as T);
  }
}

/** Names that exercise collation: digits, hyphens, prefixes of each other. */
const trickyNames = [
  "a",
  "a-b",
  "a0",
  "ab",
  "a-",
  "b",
  "z9",
  "0",
  "00",
  "0-0",
  "9z",
  "aa",
  "a--b",
  "ab-",
  "abc",
  "m",
  "n-1",
  "n1",
  "n10",
  "n2",
  "x-y-z",
  "xyz",
  "y",
];

describe.each(testEngines)("domain stores on $name", ({ skip, open }) => {
  let db: Db;
  beforeEach(async () => {
    if (skip) return;
    db = await open();
  });
  afterEach(async () => {
    if (skip) return;
    await db.close();
  });

  describe.skipIf(skip)("agents store", () => {
    it("creates, reads, updates and deletes; writes join the caller's transaction", async () => {
      const store = createAgentsStore(db);
      const row = { name: "billing", upstream: "http://u/1", description: null, created_at: T0, updated_at: T0 };
      await db.transaction((tx) => store.insert(tx, row));
      expect(await store.get("billing")).toEqual(row);
      expect(await store.get("nope")).toBeUndefined();
      const err = await store.insert(db, row).catch((e: unknown) => e);
      expect(isUniqueViolation(err)).toBe(true);
      const updated = await db.transaction(async (tx) => {
        expect(await store.get("billing", tx)).toEqual(row);
        return store.update(tx, "billing", "http://u/2", "desc", T0 + 1);
      });
      expect(updated).toEqual({ ...row, upstream: "http://u/2", description: "desc", updated_at: T0 + 1 });
      expect(await store.update(db, "nope", "http://u", null, T0)).toBeUndefined();
      // A rolled-back transaction leaves the row as it was.
      await db
        .transaction(async (tx) => {
          await store.delete(tx, "billing");
          throw new Error("undo");
        })
        .catch(() => {});
      expect(await store.get("billing")).toEqual(updated);
      expect(await db.transaction((tx) => store.delete(tx, "billing"))).toBe(true);
      expect(await store.delete(db, "billing")).toBe(false);
      expect(await store.get("billing")).toBeUndefined();
    });

    it("pages by name with no duplicates and no gaps", async () => {
      const store = createAgentsStore(db);
      for (const name of trickyNames) {
        await store.insert(db, { name, upstream: "http://u", description: null, created_at: T0, updated_at: T0 });
      }
      for (const limit of [1, 4, 7, trickyNames.length, 100]) {
        const pages = await walk(
          (after) => store.list(after, limit),
          limit,
          (r) => r.name,
        );
        const seen = pages.flat().map((r) => r.name);
        expect(new Set(seen).size).toBe(seen.length);
        expect([...seen].sort()).toEqual([...trickyNames].sort());
        for (const p of pages.slice(0, -1)) expect(p).toHaveLength(limit);
      }
    });
  });

  describe.skipIf(skip)("consumers store", () => {
    it("creates, reads, updates and deletes", async () => {
      const store = createConsumersStore(db);
      const row = { name: "acme", metadata: '{"team":"x"}', created_at: T0, updated_at: T0 };
      await db.transaction((tx) => store.insert(tx, row));
      expect(await store.get("acme")).toEqual(row);
      expect(isUniqueViolation(await store.insert(db, row).catch((e: unknown) => e))).toBe(true);
      expect(await db.transaction((tx) => store.update(tx, "acme", "{}", T0 + 5))).toEqual({
        ...row,
        metadata: "{}",
        updated_at: T0 + 5,
      });
      expect(await store.update(db, "nope", "{}", T0)).toBeUndefined();
      expect(await db.transaction((tx) => store.delete(tx, "acme"))).toBe(true);
      expect(await store.delete(db, "acme")).toBe(false);
    });

    it("pages by name with no duplicates and no gaps", async () => {
      const store = createConsumersStore(db);
      for (const name of trickyNames) await store.insert(db, { name, metadata: "{}", created_at: T0, updated_at: T0 });
      for (const limit of [1, 3, 10]) {
        const seen = (
          await walk(
            (after) => store.list(after, limit),
            limit,
            (r) => r.name,
          )
        )
          .flat()
          .map((r) => r.name);
        expect(seen).toHaveLength(trickyNames.length);
        expect(new Set(seen)).toEqual(new Set(trickyNames));
      }
    });
  });

  describe.skipIf(skip)("keys store", () => {
    const keyRow = (id: string, owner: string, over: Partial<KeyRow> = {}): KeyRow => ({
      id,
      hash: `hash-${id}`,
      prefix: "kwk_abcdefgh",
      owner,
      name: null,
      scopes: '["agent:*"]',
      status: "active",
      expires_at: null,
      rate_limit: null,
      quota: null,
      ip_allow: null,
      rotated_to: null,
      lineage: id,
      created_at: T0,
      updated_at: T0,
      revoked_at: null,
      last_used_at: null,
      canary: 0,
      ...over,
    });

    it("inserts, finds by id and by hash, updates, and refuses a duplicate hash", async () => {
      const store = createKeysStore(db);
      const row = keyRow("key_1", "consumer:acme", { expires_at: EPOCH_MS, quota: '{"limit":3,"period":"total"}' });
      await db.transaction((tx) => store.insert(tx, row));
      expect(await store.get("key_1")).toEqual(row);
      expect(await store.getByHash("hash-key_1")).toEqual(row);
      expect(await store.getByHash("nope")).toBeUndefined();
      const dupHash = await db.transaction((tx) => store.insert(tx, { ...row, id: "key_2" })).catch((e: unknown) => e);
      expect(isUniqueViolation(dupHash)).toBe(true);
      const updated = await db.transaction((tx) =>
        store.update(tx, "key_1", { status: "revoked", revoked_at: T0 + 9, expires_at: null }, T0 + 9),
      );
      expect(updated).toEqual({ ...row, status: "revoked", revoked_at: T0 + 9, expires_at: null, updated_at: T0 + 9 });
      expect(await db.transaction((tx) => store.update(tx, "nope", { name: "x" }, T0))).toBeUndefined();
    });

    it("pages by id, overall and per owner, with no duplicates and no gaps", async () => {
      const store = createKeysStore(db);
      const owners = ["consumer:a", "agent:b", "user:C"];
      // Mixed-case ids, like newId() makes: collation must agree between ORDER BY and `>`.
      const all = Array.from({ length: 31 }, (_, i) => ({
        id: `key_${["a", "B", "c", "D", "0", "z", "Z"][i % 7]}${String(i).padStart(2, "0")}`,
        owner: owners[i % owners.length] as string,
      }));
      for (const k of all) await db.transaction((tx) => store.insert(tx, keyRow(k.id, k.owner)));
      for (const limit of [1, 5, 8]) {
        const every = (
          await walk(
            (after) => store.list(undefined, after, limit),
            limit,
            (r) => r.id,
          )
        ).flat();
        expect(every.map((r) => r.id).sort()).toEqual(all.map((k) => k.id).sort());
        for (const owner of owners) {
          const mine = (
            await walk(
              (after) => store.list(owner, after, limit),
              limit,
              (r) => r.id,
            )
          ).flat();
          expect(mine.every((r) => r.owner === owner)).toBe(true);
          const ownIds = mine.map((r) => r.id);
          expect(new Set(ownIds).size).toBe(ownIds.length);
          expect(ownIds.sort()).toEqual(
            all
              .filter((k) => k.owner === owner)
              .map((k) => k.id)
              .sort(),
          );
        }
      }
    });
  });

  describe.skipIf(skip)("keys service", () => {
    let clock: ReturnType<typeof frozenClock>;
    let audit: ReturnType<typeof recordingAudit>;
    let keys: KeysService;
    let store: KeysStore;

    const build = (c: Clock) => {
      audit = recordingAudit();
      store = createKeysStore(db);
      keys = createKeysService({ db, store, clock: c, audit, integrity: INTEGRITY, ownerExists: async () => true });
    };
    beforeEach(() => {
      if (skip) return;
      clock = frozenClock(T0);
      build(clock);
    });

    const input = {
      owner: "consumer:acme",
      name: "ci",
      scopes: ["agent:billing", "read:docs"],
      rate_limit: { limit: 10, window_s: 60 },
      quota: { limit: 100, period: "month" as const },
      ip_allow: ["10.0.0.0/8"],
    };

    it("create stores only a hash, shows the secret once, and audits without it", async () => {
      const { row, secret } = await keys.create(actor, input);
      expect(isWellFormed(secret, "kwk")).toBe(true);
      const stored = await store.get(row.id);
      expect(stored).toEqual(row);
      expect(stored?.hash).toBe(hashSecret(secret, INTEGRITY));
      expect(stored?.prefix).toBe(secretPrefix(secret));
      expect(JSON.stringify(stored)).not.toContain(secret);
      expect(row).toMatchObject({ owner: "consumer:acme", status: "active", lineage: row.id, created_at: T0 });
      expect(audit.events).toEqual([
        expect.objectContaining({ actor: "admin:test", action: "key.create", target: row.id, outcome: "success" }),
      ]);
      expect(JSON.stringify(audit.events)).not.toContain(secret.slice(12));
      const entry = await keys.lookup(secret);
      expect(entry).toMatchObject({ id: row.id, status: "active", scopes: input.scopes, lineage: row.id });
    });

    it("create refuses an owner that does not exist and a past expiry, writing nothing", async () => {
      const noOwners = createKeysService({
        db,
        store,
        clock,
        audit,
        integrity: INTEGRITY,
        ownerExists: async () => false,
      });
      await expect(noOwners.create(actor, input)).rejects.toMatchObject({ code: "invalid_request" });
      await expect(keys.create(actor, { ...input, expires_at: T0 })).rejects.toMatchObject({ code: "invalid_request" });
      expect(await store.list(undefined, undefined, 10)).toEqual([]);
      expect(audit.events).toEqual([]);
    });

    it("patch changes only the given fields, clears with null, and is seen by the next lookup", async () => {
      const { row, secret } = await keys.create(actor, input);
      expect((await keys.lookup(secret)) as object).toMatchObject({ scopes: input.scopes });
      clock.advance(1000);
      const patched = await keys.patch(actor, row.id, { scopes: ["agent:*"], quota: null, expires_at: T0 + 60_000 });
      expect(patched).toMatchObject({
        scopes: '["agent:*"]',
        quota: null,
        expires_at: T0 + 60_000,
        rate_limit: row.rate_limit,
        ip_allow: row.ip_allow,
        name: "ci",
        updated_at: T0 + 1000,
      });
      expect(await keys.lookup(secret)).toMatchObject({ scopes: ["agent:*"], quota: null, expiresAt: T0 + 60_000 });
      const past = await Promise.resolve()
        .then(() => keys.patch(actor, row.id, { expires_at: T0 }))
        .catch((e: unknown) => e);
      expect(past).toMatchObject({ code: "invalid_request" });
      await expect(keys.patch(actor, "key_missing", { name: "x" })).rejects.toMatchObject({ code: "not_found" });
      expect(audit.events.map((e) => e.action)).toEqual(["key.create", "key.update"]);
    });

    it("patch reports a past expiry as a rejected promise (not a synchronous throw), like every other method", async () => {
      const { row } = await keys.create(actor, input);
      let outcome: unknown;
      try {
        outcome = keys.patch(actor, row.id, { expires_at: T0 - 1 });
      } catch (err) {
        outcome = err;
      }
      expect(outcome).toBeInstanceOf(Promise);
      await expect(outcome).rejects.toMatchObject({ code: "invalid_request" });
    });

    it("revoke, freeze and unfreeze change status and reach the next lookup", async () => {
      const { row, secret } = await keys.create(actor, input);
      await keys.lookup(secret);
      expect((await keys.freeze(actor, row.id)).status).toBe("frozen");
      expect(await keys.lookup(secret)).toMatchObject({ status: "frozen" });
      expect((await keys.unfreeze(actor, row.id)).status).toBe("active");
      expect(await keys.lookup(secret)).toMatchObject({ status: "active" });
      clock.advance(5000);
      const revoked = await keys.revoke(actor, row.id);
      expect(revoked).toMatchObject({ status: "revoked", revoked_at: T0 + 5000 });
      expect(await keys.lookup(secret)).toMatchObject({ status: "revoked" });
      clock.advance(5000);
      expect((await keys.revoke(actor, row.id)).revoked_at).toBe(T0 + 5000);
      await expect(keys.freeze(actor, row.id)).rejects.toMatchObject({ code: "conflict" });
      await expect(keys.unfreeze(actor, row.id)).rejects.toMatchObject({ code: "conflict" });
      await expect(keys.revoke(actor, "key_missing")).rejects.toMatchObject({ code: "not_found" });
      expect((await store.get(row.id))?.status).toBe("revoked");
    });

    it("rotate issues a successor with the same owner, scopes, limits and lineage; the old key expires after grace", async () => {
      const { row, secret } = await keys.create(actor, { ...input, expires_at: T0 + 86_400_000 });
      const r = await keys.rotate(actor, row.id, 30);
      expect(r.row).toMatchObject({
        owner: row.owner,
        name: row.name,
        scopes: row.scopes,
        rate_limit: row.rate_limit,
        quota: row.quota,
        ip_allow: row.ip_allow,
        expires_at: row.expires_at,
        lineage: row.id,
        status: "active",
        rotated_to: null,
      });
      expect(r.row.id).not.toBe(row.id);
      expect(r.secret).not.toBe(secret);
      expect(r.previous).toMatchObject({ id: row.id, rotated_to: r.row.id, expires_at: T0 + 30_000 });
      expect(await keys.lookup(secret)).toMatchObject({ expiresAt: T0 + 30_000 });
      expect(await keys.lookup(r.secret)).toMatchObject({ id: r.row.id, lineage: row.id });
      await expect(keys.rotate(actor, row.id, 0)).rejects.toMatchObject({ code: "conflict" });
      await expect(keys.rotate(actor, "key_missing", 0)).rejects.toMatchObject({ code: "not_found" });
      await keys.revoke(actor, r.row.id);
      await expect(keys.rotate(actor, r.row.id, 0)).rejects.toMatchObject({ code: "conflict" });
      expect(await store.list("consumer:acme", undefined, 10)).toHaveLength(2);
      expect(audit.events.map((e) => e.action)).toEqual(["key.create", "key.rotate", "key.revoke"]);
    });

    it("concurrent revoke and rotate of one key: only 409s, and a consistent end state", async () => {
      build(systemClock);
      let rotateWon = 0;
      for (let i = 0; i < 20; i++) {
        const { row } = await keys.create(actor, { owner: `consumer:race-${i}`, scopes: ["agent:*"] });
        audit.events.length = 0;
        // Alternate which call starts first, so both orders are exercised.
        const revokeFirst = i % 2 === 0;
        const early = revokeFirst ? settle(keys.revoke(actor, row.id)) : undefined;
        const rotate = settle(keys.rotate(actor, row.id, 60));
        const revoke = early ?? settle(keys.revoke(actor, row.id));
        const [revoked, rotated] = await Promise.all([revoke, rotate]);

        // Revoke always succeeds; rotate either succeeds or answers 409 conflict — nothing else.
        expect(revoked.ok, String(!revoked.ok && revoked.err)).toBe(true);
        if (!rotated.ok) {
          expect(rotated.err).toBeInstanceOf(KeywardError);
          expect((rotated.err as KeywardError).code).toBe("conflict");
        }

        const old = (await store.get(row.id)) as KeyRow;
        const lineage = await store.list(`consumer:race-${i}`, undefined, 10);
        expect(old.status).toBe("revoked");
        expect(old.revoked_at).not.toBeNull();
        if (rotated.ok) {
          rotateWon++;
          const next = rotated.v.row;
          // The rotation committed first, then the revoke revoked the old key (not the successor).
          expect(rotated.v.previous.status).toBe("active");
          expect(revoked.ok && revoked.v.rotated_to).toBe(next.id);
          expect(old.rotated_to).toBe(next.id);
          expect(next.created_at).toBeLessThanOrEqual(old.revoked_at as number);
          expect(lineage.map((k) => k.id).sort()).toEqual([row.id, next.id].sort());
          expect(await store.get(next.id)).toMatchObject({ status: "active", lineage: row.id });
          expect(await keys.lookup(rotated.v.secret)).toMatchObject({ status: "active" });
          expect(audit.events.map((e) => e.action).sort()).toEqual(["key.revoke", "key.rotate"]);
        } else {
          // The revoke committed first: no successor exists at all.
          expect(old.rotated_to).toBeNull();
          expect(lineage.map((k) => k.id)).toEqual([row.id]);
          expect(audit.events.map((e) => e.action)).toEqual(["key.revoke"]);
        }
      }
      // On SQLite transactions run in call order, so each order wins half the time.
      if (db.engine === "sqlite") expect(rotateWon).toBe(10);
    });
  });

  describe.skipIf(skip)("usage tracker", () => {
    const policy = { limit: 10, period: "total" as const };

    async function takeMany(tracker: ReturnType<typeof createUsageTracker>, lineage: string, n: number, now: number) {
      const results: boolean[] = [];
      for (let i = 0; i < n; i++) {
        await tracker.ensureLoaded(lineage, policy, now);
        results.push(tracker.take(lineage, policy, now).ok);
      }
      return results;
    }

    it("flushed counts persist: a tracker reopened on the same store continues counting", async () => {
      const clock = frozenClock(T0);
      const open = () => createUsageTracker({ db, clock, logger: silentLogger(), flushIntervalMs: 3_600_000 });
      const first = open();
      expect(await takeMany(first, "key_L", 4, T0)).toEqual([true, true, true, true]);
      await first.close();
      const stored = await db.query("SELECT key_id, period_start, used FROM quota_usage");
      expect(stored).toEqual([{ key_id: "key_L", period_start: 0, used: 4 }]);

      const second = open();
      expect(await takeMany(second, "key_L", 7, T0)).toEqual([true, true, true, true, true, true, false]);
      await second.flush();
      await second.close();
      expect((await queryOne<{ used: number }>(db, "SELECT used FROM quota_usage WHERE key_id = 'key_L'"))?.used).toBe(
        10,
      );
    });

    it("two trackers on one store (two replicas) add their increments, never overwrite", async () => {
      const clock = frozenClock(T0);
      const a = createUsageTracker({ db, clock, logger: silentLogger(), flushIntervalMs: 3_600_000 });
      const b = createUsageTracker({ db, clock, logger: silentLogger(), flushIntervalMs: 3_600_000 });
      const big = { limit: 1000, period: "day" as const };
      for (let i = 0; i < 30; i++) {
        for (const t of [a, b]) {
          await t.ensureLoaded("key_R", big, T0);
          expect(t.take("key_R", big, T0).ok).toBe(true);
        }
        if (i % 7 === 0) await Promise.all([a.flush(), b.flush()]);
      }
      await Promise.all([a.close(), b.close()]);
      expect(await db.query("SELECT period_start, used FROM quota_usage WHERE key_id = 'key_R'")).toEqual([
        { period_start: T0, used: 60 },
      ]);
    });
  });
});
