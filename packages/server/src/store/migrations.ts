import { MIGRATIONS_LOCK } from "./advisory-locks.js";
import type { Db } from "./db.js";
import { isSqliteDb } from "./sqlite.js";

/**
 * Schema migrations, written once for both engines. `{{blob}}` is BLOB/BYTEA; everything else is
 * the common subset (BIGINT epoch-ms timestamps, INTEGER booleans, TEXT JSON).
 * Append only: a migration that has shipped is never edited.
 */
export interface Migration {
  /** The schema version it brings: recorded in keyward_migrations, never reused. */
  id: number;
  name: string;
  /** Any number of statements, run whole (function bodies and string literals may hold `;`). */
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: "foundation",
    sql: `
CREATE TABLE agents (
  name TEXT PRIMARY KEY,
  upstream TEXT NOT NULL,
  description TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE consumers (
  name TEXT PRIMARY KEY,
  metadata TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL,
  owner TEXT NOT NULL,
  name TEXT,
  scopes TEXT NOT NULL,
  status TEXT NOT NULL,
  expires_at BIGINT,
  rate_limit TEXT,
  quota TEXT,
  ip_allow TEXT,
  rotated_to TEXT,
  lineage TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  revoked_at BIGINT,
  last_used_at BIGINT
);
CREATE INDEX api_keys_owner ON api_keys (owner, id);
CREATE TABLE quota_usage (
  key_id TEXT NOT NULL,
  period_start BIGINT NOT NULL,
  used BIGINT NOT NULL,
  PRIMARY KEY (key_id, period_start)
);
CREATE TABLE admin_tokens (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY,
  alg TEXT NOT NULL,
  public_jwk TEXT NOT NULL,
  private_enc {{blob}} NOT NULL,
  created_at BIGINT NOT NULL,
  retired_at BIGINT,
  remove_after BIGINT
);
CREATE TABLE audit_events (
  seq BIGINT PRIMARY KEY,
  time BIGINT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT,
  outcome TEXT NOT NULL,
  code TEXT,
  ip TEXT,
  request_id TEXT,
  details TEXT,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (time);
CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_target ON audit_events (target, seq);
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`,
  },
  {
    id: 2,
    name: "tokens",
    sql: `
CREATE TABLE refresh_tokens (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  family TEXT NOT NULL,
  key_id TEXT NOT NULL,
  subject TEXT NOT NULL,
  scope TEXT NOT NULL,
  audience TEXT,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT,
  revoked_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_key ON refresh_tokens (key_id);
CREATE TABLE token_revocations (
  jti TEXT PRIMARY KEY,
  expires_at BIGINT NOT NULL,
  revoked_at BIGINT NOT NULL
);
CREATE INDEX token_revocations_expiry ON token_revocations (expires_at);
`,
  },
  {
    id: 3,
    name: "credentials",
    // A deleted credential stays as a tombstone (deleted_at, no versions) so version numbers never
    // repeat and `since` cursors can report it as removed; credential_clock is the one counter
    // every credential and grant change takes, and locks (credentials/credentials-store.ts).
    sql: `
CREATE TABLE credential_clock (
  id INTEGER PRIMARY KEY,
  seq BIGINT NOT NULL
);
INSERT INTO credential_clock (id, seq) VALUES (1, 0);
CREATE TABLE credentials (
  name TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  current_version INTEGER,
  latest_version INTEGER NOT NULL,
  egress TEXT,
  provider TEXT,
  provider_secret {{blob}},
  config_seq BIGINT NOT NULL,
  status TEXT NOT NULL,
  status_message TEXT,
  status_at BIGINT,
  refresh_lease_until BIGINT,
  change_seq BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  deleted_at BIGINT
);
CREATE TABLE credential_versions (
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  value_enc {{blob}} NOT NULL,
  source TEXT NOT NULL,
  rolled_back_from INTEGER,
  expires_at BIGINT,
  created_at BIGINT NOT NULL,
  created_by TEXT NOT NULL,
  PRIMARY KEY (name, version)
);
CREATE TABLE agent_grants (
  agent TEXT NOT NULL,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  mode TEXT NOT NULL,
  change_seq BIGINT NOT NULL,
  PRIMARY KEY (agent, kind, name)
);
CREATE INDEX agent_grants_by_name ON agent_grants (kind, name);
`,
  },
  {
    id: 4,
    name: "cluster changes",
    // The change log replicas reconcile from (cluster/changes-store.ts); unused on SQLite.
    sql: `
CREATE TABLE changes (
  seq BIGINT PRIMARY KEY,
  kind TEXT NOT NULL,
  ref TEXT NOT NULL,
  time BIGINT NOT NULL
);
`,
  },
  {
    id: 5,
    name: "user credentials",
    // Per-user tool credentials (users/users-store.ts): one row per (user, name), the value sealed
    // with an aad naming user, name and version, so a ciphertext moved to another row fails to open.
    sql: `
CREATE TABLE user_credentials (
  user_id TEXT NOT NULL,
  name TEXT NOT NULL,
  value_enc {{blob}} NOT NULL,
  version INTEGER NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  created_by TEXT NOT NULL,
  PRIMARY KEY (user_id, name)
);
`,
  },
  {
    id: 6,
    name: "integrity root",
    // One row: the integrity root sealed by the keyring, and the first audit seq with keyed links
    // (crypto/integrity-root.ts). Created by the first process that starts on this schema.
    sql: `
CREATE TABLE integrity_keys (
  id TEXT PRIMARY KEY,
  key_enc {{blob}} NOT NULL,
  audit_keyed_from BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
`,
  },
  {
    id: 7,
    name: "legacy hash marks",
    // Secrets hashed before keyed hashes: Keyward's MAC marks which rows existed at the upgrade
    // (keys/legacy-hashes.ts); only those are looked up by plain SHA-256.
    sql: `
ALTER TABLE api_keys ADD COLUMN legacy_mark TEXT;
ALTER TABLE admin_tokens ADD COLUMN legacy_mark TEXT;
`,
  },
  {
    id: 8,
    name: "credential and grant macs",
    // Keyward's MAC over what decides which credential value is served (credentials.pointer_mac)
    // and over each grant (agent_grants.mac), and the legacy mark of refresh tokens hashed before
    // keyed hashes. Rows that exist at the upgrade are MACed once at start-up, with the integrity
    // root (credentials/integrity-upgrade.ts, keys/legacy-hashes.ts): SQL alone cannot compute them.
    sql: `
ALTER TABLE credentials ADD COLUMN pointer_mac TEXT;
ALTER TABLE agent_grants ADD COLUMN mac TEXT;
ALTER TABLE refresh_tokens ADD COLUMN legacy_mark TEXT;
`,
  },
  {
    id: 9,
    name: "usage analytics",
    // Requests per key by outcome (issue 13): one row per (key, step, bucket, agent, code), where
    // a flush adds its minute counts to the minute, hour and day rows at once (atomic increments),
    // so no roll-up job has to run and every replica's counts land in the same sums. The last
    // source addresses of each key (pruned to the newest few per key on flush), and the quota
    // thresholds already announced (one row per key lineage, period and threshold: one webhook).
    sql: `
CREATE TABLE usage_counts (
  key_id TEXT NOT NULL,
  step TEXT NOT NULL,
  bucket BIGINT NOT NULL,
  agent TEXT NOT NULL,
  code TEXT NOT NULL,
  owner TEXT NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (key_id, step, bucket, agent, code)
);
CREATE INDEX usage_counts_span ON usage_counts (step, bucket);
CREATE TABLE usage_addresses (
  key_id TEXT NOT NULL,
  ip TEXT NOT NULL,
  first_seen BIGINT NOT NULL,
  last_seen BIGINT NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (key_id, ip)
);
CREATE TABLE quota_thresholds (
  lineage TEXT NOT NULL,
  period_start BIGINT NOT NULL,
  threshold INTEGER NOT NULL,
  announced_at BIGINT NOT NULL,
  PRIMARY KEY (lineage, period_start, threshold)
);
`,
  },
  {
    id: 10,
    name: "alerts and anomaly windows",
    // Alerts (SPEC §10); alert_incidents holds one row per (rule, dedup key) whose until_at is the
    // end of its cooldown: a conditional upsert claims it, so one incident is one alert on any
    // number of replicas. anomaly_counts / anomaly_members are the detectors' shared windows
    // (each replica adds what it saw); api_keys.canary marks tripwire keys.
    sql: `
CREATE TABLE alerts (
  id TEXT PRIMARY KEY,
  rule TEXT NOT NULL,
  severity TEXT NOT NULL,
  status TEXT NOT NULL,
  key_id TEXT,
  created_at BIGINT NOT NULL,
  evidence TEXT NOT NULL,
  dedup_key TEXT NOT NULL,
  acked_at BIGINT,
  acked_by TEXT
);
CREATE INDEX alerts_newest ON alerts (created_at, id);
CREATE INDEX alerts_key ON alerts (key_id, created_at, id);
CREATE TABLE alert_incidents (
  rule TEXT NOT NULL,
  dedup_key TEXT NOT NULL,
  alert_id TEXT NOT NULL,
  until_at BIGINT NOT NULL,
  PRIMARY KEY (rule, dedup_key)
);
CREATE TABLE anomaly_counts (
  rule TEXT NOT NULL,
  subject TEXT NOT NULL,
  window_start BIGINT NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (rule, subject, window_start)
);
CREATE TABLE anomaly_members (
  rule TEXT NOT NULL,
  subject TEXT NOT NULL,
  window_start BIGINT NOT NULL,
  member TEXT NOT NULL,
  first_seen BIGINT NOT NULL,
  PRIMARY KEY (rule, subject, window_start, member)
);
ALTER TABLE api_keys ADD COLUMN canary INTEGER NOT NULL DEFAULT 0;
`,
  },
  {
    id: 11,
    name: "webhook outbox and leak reports",
    // The webhook outbox, the once-only marks of scheduled events, and leak reports' digests.
    // webhook_outbox holds one row per (event, endpoint): `event_id` is the `webhook-id` every retry
    // sends again. A replica claims a due row by a conditional UPDATE of its lease (lease_until in the
    // past or unset), so two replicas never send one row at once; a crash leaves a lease that expires
    // and the row is sent again, with the same id. event_marks makes a scheduled event (key.expiring
    // per key and threshold) one row, whichever replica's scan finds it first. leak_reports remembers
    // report digests for the replay window.
    sql: `
CREATE TABLE webhook_outbox (
  id TEXT PRIMARY KEY,
  event_id TEXT NOT NULL,
  endpoint_id TEXT NOT NULL,
  endpoint_url TEXT NOT NULL,
  type TEXT NOT NULL,
  body TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at BIGINT NOT NULL,
  last_error TEXT,
  lease_owner TEXT,
  lease_until BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  delivered_at BIGINT,
  UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (status, endpoint_id, next_attempt_at);
CREATE INDEX webhook_outbox_status ON webhook_outbox (status, id);
CREATE TABLE event_marks (
  mark TEXT PRIMARY KEY,
  created_at BIGINT NOT NULL
);
CREATE TABLE leak_reports (
  digest TEXT PRIMARY KEY,
  seen_at BIGINT NOT NULL
);
CREATE INDEX leak_reports_seen ON leak_reports (seen_at);
`,
  },
  {
    id: 12,
    name: "admin roles and console sessions",
    // Every admin token that exists at the upgrade becomes an owner (it could do everything before).
    // A revoked token keeps its row (the audit log names it) and stops authenticating at once.
    // admin_sessions holds the console's sessions: the keyed hash of the cookie's id and of its CSRF
    // token, never either value; a session lives while its admin token is active.
    sql: `
ALTER TABLE admin_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'owner';
ALTER TABLE admin_tokens ADD COLUMN revoked_at BIGINT;
CREATE TABLE admin_sessions (
  hash TEXT PRIMARY KEY,
  admin_token_id TEXT NOT NULL,
  csrf_hash TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  last_seen_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX admin_sessions_token ON admin_sessions (admin_token_id);
`,
  },
];

function forEngine(sql: string, engine: Db["engine"]): string {
  return sql.replaceAll("{{blob}}", engine === "sqlite" ? "BLOB" : "BYTEA");
}

/**
 * Brings the schema up to date (or up to migration `through`). Safe to run from many replicas at
 * once (PostgreSQL advisory lock). Each migration runs whole, in a transaction of its own that also
 * records its id, so one that fails leaves neither its changes nor its id behind, and those before
 * it stay applied. `migrations` replaces the shipped list (tests of the runner itself).
 */
export async function migrate(
  db: Db,
  opts: { through?: number; migrations?: readonly Migration[] } = {},
): Promise<void> {
  const pending = (opts.migrations ?? MIGRATIONS).filter(
    // `through` stops at an older schema: upgrade tests build the database a previous version made.
    (m) => opts.through === undefined || m.id <= opts.through,
  );
  for (const m of pending) {
    await db.transaction(async (tx) => {
      if (tx.engine === "postgres") await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATIONS_LOCK]);
      await tx.exec(
        "CREATE TABLE IF NOT EXISTS keyward_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
      );
      // Applied before, or by another replica while this one waited for the lock.
      if ((await tx.query("SELECT id FROM keyward_migrations WHERE id = $1", [m.id])).length > 0) return;
      await runWhole(tx, forEngine(m.sql, tx.engine));
      await tx.exec("INSERT INTO keyward_migrations (id, name, applied_at) VALUES ($1, $2, $3)", [
        m.id,
        m.name,
        Date.now(),
      ]);
    });
  }
}

/**
 * One migration's SQL as one string, never split on `;` (which would cut a function body or a
 * string literal apart). better-sqlite3's `exec` runs every statement of a string; node-postgres
 * sends a query without parameters in the simple protocol, which runs them all too. Both join the
 * open transaction.
 */
async function runWhole(tx: Db, sql: string): Promise<void> {
  if (isSqliteDb(tx)) tx.execScript(sql);
  else await tx.exec(sql);
}
