import type { Migration } from "../migrate.js";

// Migrations 5 to 12: per-user credentials, keyed MACs over what decides access, usage analytics,
// alerts, the webhook outbox and admin roles. Shipped: never edited (see ../migrations.ts).
export const MIGRATIONS_0005_0012: readonly Migration[] = [
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
    // (crypto/legacy-hashes.ts); only those are looked up by plain SHA-256.
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
    // root (credentials/integrity-upgrade.ts, crypto/legacy-hashes.ts): SQL alone cannot compute them.
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
