// Fills the store with many real keys, the way they would be after years of use, by writing
// rows straight into SQLite (the admin API would take hours for a million).
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";

/**
 * Inserts `count` active keys for `owner` with `policy` into `<dataDir>/keyward.db` in one
 * transaction, and returns `sample` of their secrets (never presented before: each is a cache miss).
 * Checksums, hashes and prefixes come from Keyward's own secret-format module, and every sampled
 * secret is checked with its isWellFormed, so a format change cannot silently turn misses into
 * "malformed" rejections. Hashes are keyed like the server's (crypto/secret-format.ts): from the
 * store's integrity root, opened with the server's master key (`masterKey`, base64, as
 * bench/lib/keyward.mjs returns it).
 */
export async function insertKeys(root, dataDir, { masterKey, count, sample, owner, policy, idTag = "bench" }) {
  const dist = (file) => import(pathToFileURL(join(root, "packages/server/dist/crypto", file)).href);
  const format = await dist("secret-format.js");
  const { hashSecret, secretPrefix } = format;
  const keys = await integrityKeys(dist, join(dataDir, "keyward.db"), masterKey);
  const next = secretSource(format.crc32);
  const rows = new Array(count);
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    const secret = next();
    // Ids in the real format (key_ + 16 base62), made unique by the counter.
    rows[i] = {
      secret,
      hash: hashSecret(secret, keys),
      id: `key_${idTag}${i.toString(36).padStart(16 - idTag.length, "0")}`,
    };
  }
  const picked = new Set();
  while (picked.size < Math.min(sample, count)) picked.add(Math.floor(Math.random() * count));
  const secrets = [...picked].map((i) => rows[i].secret);
  for (const s of secrets) if (!format.isWellFormed(s, "kwk")) throw new Error("bench key generator is out of date");
  // Hash order makes the unique index grow at its right edge: a bulk load, not a million page splits.
  rows.sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));

  const db = new Database(join(dataDir, "keyward.db"));
  db.pragma("busy_timeout = 10000");
  db.pragma("cache_size = -512000");
  const insert = db.prepare(
    `INSERT INTO api_keys (id, hash, prefix, owner, name, scopes, status, expires_at, rate_limit, quota, ip_allow,
       rotated_to, lineage, created_at, updated_at, revoked_at, last_used_at)
     VALUES (?, ?, ?, ?, NULL, ?, 'active', NULL, ?, ?, ?, NULL, ?, ?, ?, NULL, NULL)`,
  );
  const scopes = JSON.stringify(policy.scopes);
  const rateLimit = policy.rate_limit ? JSON.stringify(policy.rate_limit) : null;
  const quota = policy.quota ? JSON.stringify(policy.quota) : null;
  const ipAllow = policy.ip_allow ? JSON.stringify(policy.ip_allow) : null;
  db.transaction(() => {
    for (const r of rows) {
      insert.run(r.id, r.hash, secretPrefix(r.secret), owner, scopes, rateLimit, quota, ipAllow, r.id, now, now);
    }
  })();
  // Fold the WAL into the database file, as it would be on a store that has been running a while.
  db.pragma("wal_checkpoint(TRUNCATE)");
  const total = db.prepare("SELECT count(*) AS n FROM api_keys").get().n;
  db.close();
  return { secrets, total };
}

/** The store's integrity keys, the way the server opens them (crypto/integrity-root.ts). */
export async function storeIntegrityKeys(root, dataDir, masterKey) {
  return integrityKeys(
    (file) => import(pathToFileURL(join(root, "packages/server/dist/crypto", file)).href),
    join(dataDir, "keyward.db"),
    masterKey,
  );
}

async function integrityKeys(dist, dbFile, masterKey) {
  if (typeof masterKey !== "string") throw new Error("insertKeys needs the server's masterKey (bench/lib/keyward.mjs)");
  const [{ createKeyring }, { integrityRootAad }, { createIntegrityKeys }] = await Promise.all([
    dist("keyring.js"),
    dist("integrity-root.js"),
    dist("integrity-keys.js"),
  ]);
  const db = new Database(dbFile, { readonly: true });
  const row = db.prepare("SELECT key_enc, audit_keyed_from FROM integrity_keys").get();
  db.close();
  if (!row) throw new Error("the store has no integrity root yet: start keyward on it first");
  const keyring = createKeyring({ active: Buffer.from(masterKey, "base64") });
  const rootKey = keyring.open(row.key_enc, integrityRootAad(Number(row.audit_keyed_from)));
  try {
    return createIntegrityKeys(rootKey);
  } finally {
    rootKey.fill(0);
  }
}

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/**
 * `kwk_` + 32 base62 + 6 base62 of CRC32 (SPEC §2), drawing randomness in large blocks: Keyward's
 * generateSecret makes one getrandom call per key, which would spend 15 s on a million.
 */
function secretSource(crc32) {
  let pool = Buffer.alloc(0);
  let at = 0;
  return () => {
    let body = "";
    while (body.length < 32) {
      if (at >= pool.length) {
        pool = randomBytes(1 << 20);
        at = 0;
      }
      const b = pool[at++];
      if (b < 248) body += ALPHABET[b % 62];
    }
    let n = crc32(body);
    let check = "";
    for (let i = 0; i < 6; i++) {
      check = ALPHABET[n % 62] + check;
      n = Math.floor(n / 62);
    }
    return `kwk_${body}${check}`;
  };
}
