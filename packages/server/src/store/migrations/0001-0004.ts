import type { Migration } from "../migrate.js";

// Migrations 1 to 4: the foundation (keys, audit, tokens, credentials, the cluster change log).
// Shipped: never edited (see ../migrations.ts).
export const MIGRATIONS_0001_0004: readonly Migration[] = [
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
];
