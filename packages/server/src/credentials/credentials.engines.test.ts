import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { testEngines } from "../../test-support/databases.js";
import { expectCode } from "../../test-support/expect-code.js";
import type { Actor } from "../admin/admin-context.js";
import { createAgentsStore } from "../agents/agents-store.js";
import { type AuditLog, createAuditLog } from "../audit/audit-log.js";
import { frozenClock } from "../clock.js";
import { createLocalChangeFeed } from "../cluster/change-feed.js";
import { createIntegrityKeys } from "../crypto/integrity-keys.js";
import { createKeyring } from "../crypto/keyring.js";
import { silentLogger } from "../ops/logger.js";
import { createMetrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import { type CredentialsModule, createCredentialsModule } from "./credentials-module.js";

/** One integrity root for every module built here, as one database has. */
const TEST_INTEGRITY = createIntegrityKeys(Buffer.alloc(32, 11));

/**
 * The credential store, grants and agent views on both engines: versions stay linear under
 * concurrent writers, values never leave sealed except to a granted agent, a ciphertext is bound
 * to its row, and `since` cursors are exact whichever process computes them.
 */

const actor: Actor = { principal: "admin:test", requestId: "req-1" };
const MASTER = Buffer.alloc(32, 3);

for (const e of testEngines) if (e.skip) console.warn(`[credentials engines] ${e.name} skipped: ${e.skip}`);

function open(db: Db, audit: AuditLog) {
  return createCredentialsModule(
    {
      db,
      keyring: createKeyring({ active: MASTER }),
      clock: frozenClock(),
      audit,
      changes: createLocalChangeFeed(),
      logger: silentLogger(),
      metrics: createMetrics(),
      integrity: TEST_INTEGRITY,
    },
    { heartbeatMs: 60_000 },
  );
}

describe.each(testEngines)("credentials on $name", ({ skip, open: openDb }) => {
  let db: Db;
  let audit: AuditLog;
  let kw: CredentialsModule;
  const set = (name: string, value: string) => kw.credentials.set(actor, name, { type: "static", value }, undefined);
  const storedValue = async (name: string, version: number, via = kw) => {
    const row = await db.query<{ value_enc: Buffer }>(
      "SELECT value_enc FROM credential_versions WHERE name = $1 AND version = $2",
      [name, version],
    );
    return via.credentials.openVersion({ name, version, value_enc: row[0]!.value_enc });
  };
  const addAgent = (name: string) =>
    createAgentsStore(db).insert(db, {
      name,
      upstream: "http://127.0.0.1:9",
      description: null,
      created_at: 0,
      updated_at: 0,
    });

  beforeEach(async () => {
    if (skip) return;
    db = await openDb();
    audit = createAuditLog({ db, clock: frozenClock(), logger: silentLogger() });
    kw = open(db, audit);
  });
  afterEach(async () => {
    if (skip) return;
    kw.close();
    await audit.close();
    await db.close();
  });

  describe.skipIf(skip)("versions", () => {
    it("makes every PUT a new version; admin reads carry metadata and versions, never a value", async () => {
      const first = await set("openai", "sk-one");
      expect(first.created).toBe(true);
      expect(first.credential.row.current_version).toBe(1);
      const second = await set("openai", "sk-two");
      expect(second.created).toBe(false);
      expect(second.credential.row.current_version).toBe(2);

      const got = await kw.credentials.get("openai");
      expect(got.versions.map((v) => [v.version, v.source, v.created_by])).toEqual([
        [2, "set", "admin:test"],
        [1, "set", "admin:test"],
      ]);
      const listed = await kw.credentials.list(undefined, 10);
      for (const shown of [got, listed]) {
        const text = JSON.stringify(shown);
        expect(text).not.toContain("sk-one");
        expect(text).not.toContain("sk-two");
      }
      expect(await storedValue("openai", 1)).toBe("sk-one");
      expect(await storedValue("openai", 2)).toBe("sk-two");
      // Sealed at rest: the value's bytes appear nowhere in the row.
      const raw = await db.query<{ value_enc: Buffer }>("SELECT value_enc FROM credential_versions");
      for (const r of raw) expect(r.value_enc.includes(Buffer.from("sk-"))).toBe(false);
    });

    it("keeps versions linear under 50 concurrent PUTs: 1…50, every value stored once, none lost", async () => {
      const values = Array.from({ length: 50 }, (_, i) => `value-${i}-${"x".repeat(i)}`);
      const results = await Promise.all(values.map((v) => set("busy", v)));
      expect(results.filter((r) => r.created)).toHaveLength(1);
      const { credential, versions } = await kw.credentials.get("busy");
      expect(versions.map((v) => v.version).sort((a, b) => a - b)).toEqual(values.map((_, i) => i + 1));
      expect(credential.row.current_version).toBe(50);
      const stored = await Promise.all(versions.map((v) => storedValue("busy", v.version)));
      expect(stored.sort()).toEqual([...values].sort());
      // The version each writer was told is the one holding its value.
      for (let i = 0; i < values.length; i++) {
        expect(await storedValue("busy", results[i]!.credential.row.current_version!)).toBe(values[i]);
      }
      await audit.flush();
      const events = await audit.list({ action: "credential.update", limit: 100 });
      expect(events.events).toHaveLength(49);
    });

    it("stores any string up to 64 KiB byte for byte: binary-looking, control characters, emoji", async () => {
      const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
        .toString("latin1")
        .replace("\0", "\u0001");
      const values = ["ünïcødé ✓ 🔑 日本", binary, "line1\nline2\r\n\ttab", "é".repeat(32 * 1024)];
      for (const [i, v] of values.entries()) {
        await set(`v${i}`, v);
        expect(await storedValue(`v${i}`, 1)).toBe(v);
      }
      await expectCode(set("big", "x".repeat(64 * 1024 + 1)), "payload_too_large");
      await expectCode(set("lone", "a\uD800b"), "invalid_request");
      await expectCode(set("empty", ""), "invalid_request");
      await expectCode(kw.credentials.get("big"), "not_found");
    });

    it("rolls back by making a new version equal to the old one", async () => {
      await set("db", "alpha");
      await set("db", "beta");
      const rolled = await kw.credentials.rollback(actor, "db", 1);
      expect(rolled.row.current_version).toBe(3);
      expect(await storedValue("db", 3)).toBe("alpha");
      const { versions } = await kw.credentials.get("db");
      expect(versions[0]).toMatchObject({ version: 3, source: "rollback", rolled_back_from: 1 });
      await expectCode(kw.credentials.rollback(actor, "db", 9), "not_found");
      await expectCode(kw.credentials.rollback(actor, "nope", 1), "not_found");
    });

    it("deletes every value, keeps the name's numbering, and a new PUT continues after it", async () => {
      await set("gone", "one");
      await set("gone", "two");
      await kw.credentials.remove(actor, "gone");
      await expectCode(kw.credentials.get("gone"), "not_found");
      await expectCode(kw.credentials.remove(actor, "gone"), "not_found");
      const left = await db.query("SELECT version FROM credential_versions WHERE name = $1", ["gone"]);
      expect(left).toHaveLength(0);
      const again = await set("gone", "three");
      expect(again.created).toBe(true);
      expect(again.credential.row.current_version).toBe(3);
      expect((await kw.credentials.get("gone")).versions.map((v) => v.version)).toEqual([3]);
    });
  });

  describe.skipIf(skip)("sealed values are bound to their row", () => {
    it("a ciphertext moved to another version or another credential does not open", async () => {
      await set("a", "alpha-secret");
      await set("a", "alpha-second");
      await set("b", "beta-secret");
      const v1 = (
        await db.query<{ value_enc: Buffer }>(
          "SELECT value_enc FROM credential_versions WHERE name = 'a' AND version = 1",
        )
      )[0]!.value_enc;
      await db.exec("UPDATE credential_versions SET value_enc = $1 WHERE name = 'a' AND version = 2", [v1]);
      await db.exec("UPDATE credential_versions SET value_enc = $1 WHERE name = 'b' AND version = 1", [v1]);
      for (const [name, version] of [
        ["a", 2],
        ["b", 1],
      ] as const) {
        const err = await expectCode(storedValue(name, version), "credential_unavailable");
        expect(err.message).toContain(`credential_versions:${name}:${version}:value`);
        expect(err.message).not.toContain("alpha");
      }
      expect(await storedValue("a", 1)).toBe("alpha-secret");
    });

    it("a flipped bit in the wrapped data key gives a clear error, no output, and no new version", async () => {
      await set("k", "kappa-secret");
      await set("other", "other-secret");
      const sealed = (
        await db.query<{ value_enc: Buffer }>("SELECT value_enc FROM credential_versions WHERE name = 'k'")
      )[0]!.value_enc;
      const damaged = Buffer.from(sealed);
      damaged[30] = (damaged[30] as number) ^ 0x01; // inside the wrapped data key (bytes 21-52)
      await db.exec("UPDATE credential_versions SET value_enc = $1 WHERE name = 'k'", [damaged]);
      const err = await expectCode(storedValue("k", 1), "credential_unavailable");
      expect(err.message).toMatch(/authentication failed/);
      await expectCode(kw.credentials.rollback(actor, "k", 1), "credential_unavailable");
      expect((await kw.credentials.get("k")).credential.row.latest_version).toBe(1);

      // An agent granted both still gets the healthy one; the damaged one is named, not served.
      await addAgent("bot");
      await kw.grants.replace(actor, "bot", {
        credentials: [
          { name: "k", mode: "read" },
          { name: "other", mode: "read" },
        ],
      });
      const body = JSON.parse((await kw.views.get("bot")).full().body.toString());
      expect(Object.keys(body.credentials)).toEqual(["other"]);
      expect(body.unavailable.k.code).toBe("credential_unavailable");
      expect(JSON.stringify(body)).not.toContain("kappa");
    });
  });

  describe.skipIf(skip)("grants and agent views", () => {
    beforeEach(async () => {
      if (skip) return;
      await addAgent("bot");
      await addAgent("peer");
      await set("read-me", "r1");
      await set("inject-me", "i1");
      await set("not-granted", "n1");
    });

    it("serves read grants only; inject and ungranted names never appear", async () => {
      await kw.grants.replace(actor, "bot", {
        credentials: [
          { name: "read-me", mode: "read" },
          { name: "inject-me", mode: "inject" },
        ],
      });
      const full = JSON.parse((await kw.views.get("bot")).full().body.toString());
      expect(full.credentials).toEqual({ "read-me": { value: "r1", version: 1 } });
      expect(full.removed).toEqual([]);
      expect(await kw.grants.credentialMode("bot", "inject-me")).toBe("inject");
      expect(await kw.grants.credentialMode("bot", "not-granted")).toBeNull();
      expect(JSON.parse((await kw.views.get("peer")).full().body.toString()).credentials).toEqual({});
    });

    it("answers `since` with exactly what changed, removals included, on any process", async () => {
      await kw.grants.replace(actor, "bot", {
        credentials: [
          { name: "read-me", mode: "read" },
          { name: "inject-me", mode: "inject" },
        ],
      });
      const v0 = await kw.views.get("bot");
      const c0 = v0.cursor;
      expect(JSON.parse(v0.since(c0).body.toString())).toEqual({ credentials: {}, removed: [], cursor: String(c0) });

      // Changes that are not this agent's leave its cursor and ETag alone.
      await set("not-granted", "n2");
      await set("inject-me", "i2");
      await kw.grants.replace(actor, "peer", { credentials: [{ name: "read-me", mode: "read" }] });
      const v1 = await kw.views.get("bot");
      expect(v1.cursor).toBe(c0);
      expect(v1.full().etag).toBe(v0.full().etag);

      await set("read-me", "r2");
      await kw.grants.replace(actor, "bot", {
        credentials: [
          { name: "inject-me", mode: "read" },
          { name: "not-granted", mode: "inject" },
        ],
      });
      const v2 = await kw.views.get("bot");
      const delta = JSON.parse(v2.since(c0).body.toString());
      expect(delta.credentials).toEqual({ "inject-me": { value: "i2", version: 2 } });
      expect(delta.removed.sort()).toEqual(["not-granted", "read-me"]);
      expect(Number(delta.cursor)).toBeGreaterThan(c0);

      // Another process on the same store, with empty caches, answers the same.
      const other = open(db, audit);
      try {
        expect((await other.views.get("bot")).since(c0).body.toString()).toBe(v2.since(c0).body.toString());
        expect((await other.views.get("bot")).full().etag).toBe(v2.full().etag);
      } finally {
        other.close();
      }

      await kw.credentials.remove(actor, "inject-me");
      const v3 = await kw.views.get("bot");
      const after = JSON.parse(v3.since(Number(delta.cursor)).body.toString());
      expect(after).toMatchObject({ credentials: {}, removed: ["inject-me"] });
      expect(JSON.parse(v3.full().body.toString()).credentials).toEqual({});
      // A deleted credential's grants are gone too: recreating it grants nothing.
      await set("inject-me", "i3");
      expect(JSON.parse((await kw.views.get("bot")).full().body.toString()).credentials).toEqual({});
      expect((await kw.grants.get("bot")).credentials).toEqual([{ name: "not-granted", mode: "inject" }]);
    });

    it("replaces grants as a whole and refuses unknown names without changing anything", async () => {
      const g = await kw.grants.replace(actor, "bot", {
        credentials: [{ name: "read-me", mode: "read" }],
        user_credentials: ["github", "jira"],
        may_call: ["peer"],
      });
      expect(g).toEqual({
        agent: "bot",
        credentials: [{ name: "read-me", mode: "read" }],
        user_credentials: ["github", "jira"],
        may_call: ["peer"],
      });
      expect(await kw.grants.mayCall("bot", "peer")).toBe(true);
      expect(await kw.grants.mayCall("peer", "bot")).toBe(false);
      expect(await kw.grants.userCredentials("bot")).toEqual(["github", "jira"]);

      await expectCode(
        kw.grants.replace(actor, "bot", { credentials: [{ name: "missing", mode: "read" }] }),
        "invalid_request",
      );
      await expectCode(kw.grants.replace(actor, "bot", { credentials: [], may_call: ["ghost"] }), "invalid_request");
      await expectCode(
        kw.grants.replace(actor, "bot", {
          credentials: [
            { name: "read-me", mode: "read" },
            { name: "read-me", mode: "inject" },
          ],
        }),
        "invalid_request",
      );
      await expectCode(kw.grants.replace(actor, "ghost", { credentials: [] }), "not_found");
      expect(await kw.grants.get("bot")).toEqual(g);

      const cleared = await kw.grants.replace(actor, "bot", { credentials: [] });
      expect(cleared).toEqual({ agent: "bot", credentials: [], user_credentials: [], may_call: [] });
      expect(await kw.grants.mayCall("bot", "peer")).toBe(false);
    });

    it("removes an agent's grants with the agent, so a new agent of that name starts with none", async () => {
      await kw.grants.replace(actor, "bot", { credentials: [{ name: "read-me", mode: "read" }], may_call: ["peer"] });
      await db.transaction(async (tx) => {
        await kw.removeAgentIn(tx, "bot");
        await createAgentsStore(db).delete(tx, "bot");
      });
      await addAgent("bot");
      const fresh = open(db, audit);
      try {
        expect(await fresh.grants.get("bot")).toEqual({
          agent: "bot",
          credentials: [],
          user_credentials: [],
          may_call: [],
        });
        expect(JSON.parse((await fresh.views.get("bot")).full().body.toString()).credentials).toEqual({});
      } finally {
        fresh.close();
      }
    });
  });
});
