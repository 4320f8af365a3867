import { createPrivateKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { createLocalJWKSet, jwtVerify } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { testEngines } from "../../test-support/databases.js";
import { frozenClock } from "../clock.js";
import type { Db } from "../store/db.js";
import { createKeyring, DecryptError } from "./keyring.js";
import { createSigningKeys, privateKeyAad } from "./signing-keys.js";
import { createSigningKeysStore } from "./signing-keys-store.js";

interface KeyRow {
  kid: string;
  alg: string;
  public_jwk: string;
  private_enc: Buffer;
  retired_at: number | null;
  remove_after: number | null;
}

/**
 * Holds every transaction right after its first SELECT until all `parties` have made theirs, so
 * without mutual exclusion they all see an empty table. With it, the others never get there: the
 * timeout lets the one inside go on (there is no event to await for "blocked on a lock").
 */
function withSelectBarrier(db: Db, parties: number): Db {
  let arrived = 0;
  let open!: () => void;
  const allArrived = new Promise<void>((resolve) => {
    open = resolve;
  });
  const barrier = async () => {
    if (++arrived >= parties) open();
    await Promise.race([allArrived, new Promise((resolve) => setTimeout(resolve, 150))]);
  };
  const inTx = (tx: Db): Db => ({
    engine: tx.engine,
    query: async (sql, params) => {
      const result = await tx.query(sql, params);
      if (sql.startsWith("SELECT")) await barrier();
      return result as never;
    },
    exec: (sql, params) => tx.exec(sql, params),
    transaction: (fn) => tx.transaction(fn),
    ping: () => tx.ping(),
    close: () => tx.close(),
  });
  return {
    engine: db.engine,
    query: (sql, params) => db.query(sql, params),
    exec: (sql, params) => db.exec(sql, params),
    transaction: (fn) => db.transaction((tx) => fn(inTx(tx))),
    ping: () => db.ping(),
    close: () => db.close(),
  };
}

describe.each(testEngines)("signing keys on $name", (engine) => {
  let db: Db;
  const masterKey = randomBytes(32);
  const keyring = createKeyring({ active: masterKey });

  beforeEach(async () => {
    if (!engine.skip) db = await engine.open();
  });
  afterEach(async () => {
    await db?.close();
  });

  const rows = () => db.query<KeyRow>("SELECT * FROM signing_keys ORDER BY created_at, kid");

  describe.skipIf(engine.skip)("", () => {
    it("creates one key on an empty store and publishes it", async () => {
      const keys = createSigningKeys({ db, keyring, clock: frozenClock() });
      expect(() => keys.activeKid).toThrow(/init/);
      await keys.init();
      const stored = await rows();
      expect(stored.map((r) => r.kid)).toEqual([keys.activeKid]);
      expect(stored[0]?.alg).toBe("ES256");
      expect(keys.jwks().keys).toEqual([
        {
          kty: "EC",
          crv: "P-256",
          x: expect.any(String),
          y: expect.any(String),
          kid: keys.activeKid,
          alg: "ES256",
          use: "sig",
        },
      ]);
    });

    it("signs tokens that jose verifies against jwks()", async () => {
      const keys = createSigningKeys({ db, keyring, clock: frozenClock() });
      await keys.init();
      const claims = { iss: "https://kw.test", sub: "consumer:billing", aud: "agent:w", scope: "agent:w read" };
      const token = keys.sign({ ...claims, exp: Math.floor(Date.now() / 1000) + 60 });
      const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(keys.jwks()), {
        algorithms: ["ES256"],
        typ: "at+jwt",
      });
      expect(payload).toMatchObject(claims);
      expect(protectedHeader).toEqual({ alg: "ES256", typ: "at+jwt", kid: keys.activeKid });

      const own = keys.verify(token, { typ: "at+jwt" });
      expect(own).toEqual({ ok: true, value: { header: protectedHeader, payload } });

      const other = keys.sign({ sub: "x" }, "dpop+jwt");
      expect((await jwtVerify(other, createLocalJWKSet(keys.jwks()), { typ: "dpop+jwt" })).protectedHeader.typ).toBe(
        "dpop+jwt",
      );
      expect(keys.verify(other, { typ: "application/DPoP+JWT" }).ok).toBe(true);
    });

    it("stores the private key sealed: the row never holds it in the clear", async () => {
      const keys = createSigningKeys({ db, keyring, clock: frozenClock() });
      await keys.init();
      const [row] = await rows();
      const der = keyring.open(row!.private_enc, privateKeyAad(row!.kid));
      const jwk = createPrivateKey({ key: der, format: "der", type: "pkcs8" }).export({ format: "jwk" });
      const d = Buffer.from(jwk.d!, "base64url");
      expect(d.length).toBe(32);
      const rowBytes = Buffer.concat([Buffer.from(JSON.stringify({ ...row, private_enc: null })), row!.private_enc]);
      for (const needle of [
        d,
        Buffer.from(jwk.d!),
        Buffer.from(d.toString("hex")),
        Buffer.from(d.toString("base64")),
      ]) {
        expect(rowBytes.includes(needle)).toBe(false);
      }
      expect(row!.private_enc.includes(der)).toBe(false);
      expect(JSON.parse(row!.public_jwk)).not.toHaveProperty("d");
      expect(keyring.keyIdOf(row!.private_enc)).toBe(keyring.activeKeyId);
    });

    it("reopens the same key from the same store, and only with the master key", async () => {
      const first = createSigningKeys({ db, keyring, clock: frozenClock() });
      await first.init();
      const token = first.sign({ sub: "a" });

      const again = createSigningKeys({
        db,
        keyring: createKeyring({ active: Buffer.from(masterKey) }),
        clock: frozenClock(),
      });
      await again.init();
      expect(again.activeKid).toBe(first.activeKid);
      expect(again.verify(token).ok).toBe(true);
      expect(await rows()).toHaveLength(1);

      const stranger = createSigningKeys({
        db,
        keyring: createKeyring({ active: randomBytes(32) }),
        clock: frozenClock(),
      });
      await expect(stranger.init()).rejects.toThrow(DecryptError);
      await expect(stranger.init()).rejects.toThrow(
        /signing key .* sealed under master key [0-9a-f]{16}, which is not loaded/,
      );
    });

    it("gives replicas starting together one key", async () => {
      const replicas = Array.from({ length: 4 }, () => createSigningKeys({ db, keyring, clock: frozenClock() }));
      await Promise.all(replicas.map((r) => r.init()));
      expect(new Set(replicas.map((r) => r.activeKid)).size).toBe(1);
      expect(await rows()).toHaveLength(1);
    });

    it("lets exactly one of several concurrent first inserts through", async () => {
      const parties = 3;
      const store = createSigningKeysStore(withSelectBarrier(db, parties));
      const candidates = Array.from({ length: parties }, (_, i) => ({
        kid: `candidate-${i}`,
        alg: "ES256",
        public_jwk: "{}",
        private_enc: Buffer.alloc(1),
        created_at: i,
      }));
      const inserted = await Promise.all(candidates.map((c) => store.insertFirst(c)));
      expect(inserted.filter(Boolean)).toHaveLength(1);
      expect(await rows()).toHaveLength(1);
    });

    it("keeps a rotated-out key in jwks until remove_after, then drops it", async () => {
      const clock = frozenClock();
      const keys = createSigningKeys({ db, keyring, clock });
      const replica = createSigningKeys({ db, keyring, clock });
      await keys.init();
      await replica.init();
      const oldKid = keys.activeKid;
      const oldToken = keys.sign({ sub: "before" });

      clock.advance(1000);
      const { kid: newKid } = await keys.rotate(600);
      expect(newKid).not.toBe(oldKid);
      expect(keys.activeKid).toBe(newKid);
      expect(
        keys
          .jwks()
          .keys.map((k) => k.kid)
          .sort(),
      ).toEqual([oldKid, newKid].sort());
      expect(keys.verify(oldToken).ok).toBe(true);
      expect(JSON.parse(Buffer.from(keys.sign({}).split(".")[0]!, "base64url").toString()).kid).toBe(newKid);
      const old = (await rows()).find((r) => r.kid === oldKid);
      expect(old).toMatchObject({ retired_at: clock.now(), remove_after: clock.now() + 600_000 });

      // The other replica keeps signing with the old key until it reloads.
      expect(replica.activeKid).toBe(oldKid);
      await replica.reload();
      expect(replica.activeKid).toBe(newKid);

      clock.advance(599_999);
      await keys.reload();
      expect(keys.jwks().keys).toHaveLength(2);

      clock.advance(1);
      await keys.reload();
      expect(keys.jwks().keys.map((k) => k.kid)).toEqual([newKid]);
      expect(keys.verify(oldToken)).toEqual({ ok: false, code: "unknown_kid" });
      expect((await rows()).map((r) => r.kid)).toEqual([newKid]);
    });

    it("refuses a row whose public key was swapped", async () => {
      const keys = createSigningKeys({ db, keyring, clock: frozenClock() });
      await keys.init();
      const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const foreignJwk = { ...publicKey.export({ format: "jwk" }), kid: keys.activeKid, alg: "ES256", use: "sig" };
      await db.exec("UPDATE signing_keys SET public_jwk = $1", [JSON.stringify(foreignJwk)]);
      const fresh = createSigningKeys({ db, keyring, clock: frozenClock() });
      await expect(fresh.init()).rejects.toThrow(/does not match its stored public key/);
    });

    it("refuses a sealed private key copied onto another row", async () => {
      const keys = createSigningKeys({ db, keyring, clock: frozenClock() });
      await keys.init();
      const [row] = await rows();
      // Move the sealed key under a different kid: the aad binding must stop it.
      await db.exec("UPDATE signing_keys SET kid = $1", ["attacker-kid"]);
      expect(row?.kid).not.toBe("attacker-kid");
      const fresh = createSigningKeys({ db, keyring, clock: frozenClock() });
      await expect(fresh.init()).rejects.toThrow(/cannot load signing key attacker-kid: .*authentication failed/);
    });
  });
});
