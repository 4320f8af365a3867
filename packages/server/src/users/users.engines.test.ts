import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { testEngines } from "../../test-support/databases.js";
import { expectCode } from "../../test-support/expect-code.js";
import { recordingAudit } from "../../test-support/recording-audit.js";
import type { Actor } from "../admin/admin-context.js";
import { frozenClock } from "../clock.js";
import { createLocalChangeFeed } from "../cluster/change-feed.js";
import { createKeyring } from "../crypto/keyring.js";
import { rewrapAll } from "../crypto/master-key-rotation.js";
import { silentLogger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import { createUsersService, type UsersService } from "./users-service.js";
import { createUsersStore, USER_CREDENTIAL_SEALED_COLUMNS } from "./users-store.js";

/**
 * The per-user credential store and service on both engines: values sealed and bound to their
 * row, versions linear under concurrent writers, resolve all-or-nothing and served from memory
 * until a change drops it, and every write audited and announced.
 */

const admin: Actor = { principal: "admin:test", requestId: "req-1" };
const MASTER = Buffer.alloc(32, 3);

for (const e of testEngines) if (e.skip) console.warn(`[users engines] ${e.name} skipped: ${e.skip}`);

describe.each(testEngines)("user credentials on $name", ({ skip, open }) => {
  let db: Db;
  let audit: ReturnType<typeof recordingAudit>;
  let feed: ReturnType<typeof createLocalChangeFeed>;
  let users: UsersService;
  let reads: number;
  const build = (master = MASTER, retired: Buffer[] = []) =>
    createUsersService({
      db,
      store: createUsersStore(db),
      keyring: createKeyring({ active: master, retired }),
      clock: frozenClock(),
      audit,
      changes: feed,
      logger: silentLogger(),
    });

  beforeEach(async () => {
    if (skip) return;
    db = await open();
    audit = recordingAudit();
    feed = createLocalChangeFeed();
    users = build();
    reads = 0;
    // Counts store reads of sealed values, to show that cache hits make none.
    const query = db.query.bind(db);
    db.query = (async (sql: string, params?: readonly unknown[]) => {
      if (sql.includes("value_enc FROM user_credentials")) reads++;
      return query(sql, params as never);
    }) as Db["query"];
  });
  afterEach(async () => {
    if (skip) return;
    await db.close();
  });

  describe.skipIf(skip)("writes", () => {
    it("creates version 1, then counts up; lists names and versions, never values; seals at rest", async () => {
      const first = await users.put(admin, "alice@example.com", "cloud_ak", "AKIA-one");
      expect(first).toMatchObject({ user: "alice@example.com", name: "cloud_ak", version: 1, created: true });
      const second = await users.put(admin, "alice@example.com", "cloud_ak", "AKIA-two");
      expect(second).toMatchObject({ version: 2, created: false });
      await users.put(admin, "alice@example.com", "b_token", "tok-b");

      const listed = await users.list("alice@example.com", undefined, 10);
      expect(listed.map((m) => [m.name, m.version])).toEqual([
        ["b_token", 1],
        ["cloud_ak", 2],
      ]);
      expect(JSON.stringify(listed)).not.toMatch(/AKIA|tok-b/);
      const raw = await db.query<{ value_enc: Buffer }>("SELECT value_enc FROM user_credentials");
      for (const r of raw) {
        expect(r.value_enc.includes(Buffer.from("AKIA"))).toBe(false);
        expect(r.value_enc.includes(Buffer.from("tok-b"))).toBe(false);
      }
      expect(await users.source.resolve("alice@example.com", ["cloud_ak"])).toEqual({
        ok: true,
        values: { cloud_ak: "AKIA-two" },
      });
    });

    it("audits every write by name and version, never the value, and announces the user", async () => {
      const changed: string[] = [];
      users.source.onChange((u) => changed.push(u));
      await users.put({ principal: "user:bob" }, "bob", "gh", "ghp-secret-1");
      await users.put(admin, "bob", "gh", "ghp-secret-2");
      await users.remove(admin, "bob", "gh");
      expect(audit.events.map((e) => [e.actor, e.action, e.target, e.details])).toEqual([
        ["user:bob", "user_credential.create", "user:bob", { name: "gh", version: 1 }],
        ["admin:test", "user_credential.update", "user:bob", { name: "gh", version: 2 }],
        ["admin:test", "user_credential.delete", "user:bob", { name: "gh" }],
      ]);
      expect(JSON.stringify(audit.events)).not.toContain("ghp-secret");
      expect(changed).toEqual(["bob", "bob", "bob"]);
    });

    it("deletes for good (404 the second time); a new PUT starts over at version 1", async () => {
      await users.put(admin, "carol", "k", "v1");
      await users.remove(admin, "carol", "k");
      await expectCode(users.remove(admin, "carol", "k"), "not_found");
      expect(await users.list("carol", undefined, 10)).toEqual([]);
      expect((await users.put(admin, "carol", "k", "v2")).version).toBe(1);
      expect(await db.query("SELECT version FROM user_credentials WHERE user_id = 'carol'")).toHaveLength(1);
    });

    it("keeps versions linear under 30 concurrent PUTs of one name: 1…30, each audited once, none lost", async () => {
      const values = Array.from({ length: 30 }, (_, i) => `value-${i}`);
      const results = await Promise.all(values.map((v) => users.put(admin, "dave", "busy", v)));
      expect(results.map((r) => r.version).sort((a, b) => a - b)).toEqual(values.map((_, i) => i + 1));
      expect(results.filter((r) => r.created)).toHaveLength(1);
      const versions = audit.events.map((e) => e.details?.version as number).sort((a, b) => a - b);
      expect(versions).toEqual(values.map((_, i) => i + 1));
      // The value stored is the one the last version's writer wrote.
      const last = results.find((r) => r.version === 30)!;
      const lastValue = values[results.indexOf(last)];
      expect(await users.source.resolve("dave", ["busy"])).toEqual({ ok: true, values: { busy: lastValue } });
    });

    it("refuses bad ids, names and values before touching the store", async () => {
      await expectCode(users.put(admin, "no/slash", "k", "v"), "invalid_request");
      await expectCode(users.put(admin, "user:x", "k", "v"), "invalid_request");
      await expectCode(users.put(admin, "x".repeat(129), "k", "v"), "invalid_request");
      await expectCode(users.put(admin, "erin", "__proto__", "v"), "invalid_request");
      await expectCode(users.put(admin, "erin", "..", "v"), "invalid_request");
      await expectCode(users.put(admin, "erin", "k", ""), "invalid_request");
      await expectCode(users.put(admin, "erin", "k", "x".repeat(64 * 1024 + 1)), "payload_too_large");
      expect(audit.events).toEqual([]);
      expect(await db.query("SELECT user_id FROM user_credentials")).toEqual([]);
    });
  });

  describe.skipIf(skip)("listing users", () => {
    /** Every page of `listUsers`, the way the route pages (limit + 1 rows, cursor = last user). */
    async function allPages(limit: number, credential?: string) {
      const pages: Array<Array<{ user: string; names: string[] }>> = [];
      let after: string | undefined;
      for (;;) {
        const rows = await users.listUsers({ after, limit, credential });
        const page = rows.slice(0, limit);
        pages.push(page.map((u) => ({ user: u.user, names: u.credentials.map((c) => c.name) })));
        if (rows.length <= limit) return pages;
        after = page[page.length - 1]!.user;
      }
    }

    it("pages users by id, each with all their credentials by name, and never a value", async () => {
      for (const [user, name] of [
        ["u3", "gh"],
        ["u1", "cloud_ak"],
        ["u5", "gh"],
        ["u1", "gh"],
        ["u2", "cloud_ak"],
        ["u4", "cloud_ak"],
        ["u1", "cloud_ak"],
      ] as const) {
        await users.put(admin, user, name, `SECRET-${user}-${name}`);
      }
      expect(await allPages(2)).toEqual([
        [
          { user: "u1", names: ["cloud_ak", "gh"] },
          { user: "u2", names: ["cloud_ak"] },
        ],
        [
          { user: "u3", names: ["gh"] },
          { user: "u4", names: ["cloud_ak"] },
        ],
        [{ user: "u5", names: ["gh"] }],
      ]);
      const all = await users.listUsers({ after: undefined, limit: 10 });
      expect(all[0]).toEqual({
        user: "u1",
        credentials: [
          expect.objectContaining({ user_id: "u1", name: "cloud_ak", version: 2, updated_at: expect.any(Number) }),
          expect.objectContaining({ user_id: "u1", name: "gh", version: 1 }),
        ],
      });
      expect(JSON.stringify(all)).not.toContain("SECRET");
      // A limit that ends exactly at the last user leaves no further page.
      expect((await users.listUsers({ after: undefined, limit: 5 })).length).toBe(5);
      expect(await users.listUsers({ after: "u5", limit: 5 })).toEqual([]);
    });

    it("filters by credential name, still listing each user's every credential; a deleted user drops out", async () => {
      await users.put(admin, "amy", "gh", "v");
      await users.put(admin, "amy", "npm", "v");
      await users.put(admin, "ben", "npm", "v");
      await users.put(admin, "cat", "gh", "v");
      await users.put(admin, "dot", "gh", "v");
      expect(await allPages(2, "gh")).toEqual([
        [
          { user: "amy", names: ["gh", "npm"] },
          { user: "cat", names: ["gh"] },
        ],
        [{ user: "dot", names: ["gh"] }],
      ]);
      expect(await allPages(10, "nobody_has_it")).toEqual([[]]);
      await users.remove(admin, "cat", "gh");
      expect((await allPages(10)).flat().map((u) => u.user)).toEqual(["amy", "ben", "dot"]);
    });

    it("keeps paging consistent for ids of any case and punctuation", async () => {
      const ids = ["Zed", "alice@example.com", "a.b", "a-b", "ab", "A+b", "_x", "9"];
      for (const id of ids) await users.put(admin, id, "k", "v");
      const one = (await allPages(100)).flat().map((u) => u.user);
      expect([...one].sort()).toEqual([...ids].sort());
      for (const limit of [1, 3]) expect((await allPages(limit)).flat().map((u) => u.user)).toEqual(one);
    });

    it("refuses a cursor that is no user id and a bad credential name", async () => {
      await expectCode(users.listUsers({ after: "a/b", limit: 10 }), "invalid_request");
      await expectCode(users.listUsers({ after: "", limit: 10 }), "invalid_request");
      await expectCode(users.listUsers({ after: undefined, limit: 10, credential: "__proto__" }), "invalid_request");
      await expectCode(users.listUsers({ after: undefined, limit: 10, credential: "" }), "invalid_request");
    });
  });

  describe.skipIf(skip)("resolve", () => {
    it("is all or nothing and names the first missing credential", async () => {
      await users.put(admin, "frank", "a", "va");
      await users.put(admin, "frank", "c", "vc");
      expect(await users.source.resolve("frank", ["a", "b", "c", "d"])).toEqual({ ok: false, missing: "b" });
      expect(await users.source.resolve("frank", ["c", "a"])).toEqual({ ok: true, values: { c: "vc", a: "va" } });
      expect(await users.source.resolve("nobody", ["a"])).toEqual({ ok: false, missing: "a" });
    });

    it("answers from memory after the first read, and reads again once a write changed the user", async () => {
      await users.put(admin, "gina", "a", "one");
      await users.put(admin, "hank", "a", "hank-one");
      reads = 0;
      await Promise.all(Array.from({ length: 20 }, () => users.source.resolve("gina", ["a"])));
      expect(reads).toBe(1);
      await users.source.resolve("gina", ["a"]);
      await users.source.resolve("hank", ["a"]);
      expect(reads).toBe(2);
      await users.put(admin, "gina", "a", "two");
      expect(await users.source.resolve("gina", ["a"])).toEqual({ ok: true, values: { a: "two" } });
      await users.source.resolve("hank", ["a"]); // another user's cache is untouched
      expect(reads).toBe(3);
      await users.remove(admin, "gina", "a");
      expect(await users.source.resolve("gina", ["a"])).toEqual({ ok: false, missing: "a" });
    });

    it("never caches what a read started before a change saw", async () => {
      await users.put(admin, "ivan", "a", "old");
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      const query = db.query.bind(db);
      db.query = (async (sql: string, params?: readonly unknown[]) => {
        const rows = await query(sql, params as never);
        if (sql.includes("value_enc FROM user_credentials")) await gate;
        return rows;
      }) as Db["query"];
      const slow = users.source.resolve("ivan", ["a"]);
      await users.put(admin, "ivan", "a", "new");
      release();
      expect(await slow).toEqual({ ok: true, values: { a: "old" } });
      expect(await users.source.resolve("ivan", ["a"])).toEqual({ ok: true, values: { a: "new" } });
    });
  });

  describe.skipIf(skip)("sealing", () => {
    it("binds a ciphertext to its user, name and version: moved anywhere else it does not open", async () => {
      await users.put(admin, "alice", "key", "alice-secret");
      await users.put(admin, "bob", "key", "bob-secret");
      await users.put(admin, "alice", "other", "alice-other");
      const sealedOf = async (user: string, name: string) =>
        (
          await db.query<{ value_enc: Buffer }>(
            "SELECT value_enc FROM user_credentials WHERE user_id = $1 AND name = $2",
            [user, name],
          )
        )[0]!.value_enc;
      const alices = await sealedOf("alice", "key");
      // To another user's row…
      await db.exec("UPDATE user_credentials SET value_enc = $1 WHERE user_id = 'bob' AND name = 'key'", [alices]);
      const fresh = build();
      await expectCode(fresh.source.resolve("bob", ["key"]), "credential_unavailable");
      // …to another name of the same user…
      await db.exec("UPDATE user_credentials SET value_enc = $1 WHERE user_id = 'alice' AND name = 'other'", [alices]);
      await expectCode(build().source.resolve("alice", ["other"]), "credential_unavailable");
      // …or to another version of the same row.
      await db.exec("UPDATE user_credentials SET version = 2 WHERE user_id = 'alice' AND name = 'key'");
      const err = await expectCode(build().source.resolve("alice", ["key"]), "credential_unavailable");
      expect(err.message).not.toContain("alice-secret");
    });

    it("is rewrapped by a master-key rotation and opens under the new key", async () => {
      await users.put(admin, "alice", "key", "alice-secret");
      const next = Buffer.alloc(32, 9);
      const rotated = build(next, [MASTER]);
      const report = await rewrapAll(
        db,
        createKeyring({ active: next, retired: [MASTER] }),
        USER_CREDENTIAL_SEALED_COLUMNS,
      );
      expect(report).toMatchObject({ rewrapped: 1, failed: [] });
      expect(await rotated.source.resolve("alice", ["key"])).toEqual({ ok: true, values: { key: "alice-secret" } });
      const onlyNew = build(next);
      expect(await onlyNew.source.resolve("alice", ["key"])).toEqual({ ok: true, values: { key: "alice-secret" } });
    });
  });
});
