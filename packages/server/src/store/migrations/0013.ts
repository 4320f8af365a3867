import type { Migration } from "../migrate.js";

// Migration 13: the authorization server for MCP clients (SPEC §12, oauth/). Shipped: never edited.
export const MIGRATIONS_0013: readonly Migration[] = [
  {
    id: 13,
    name: "oauth clients, authorization requests and codes",
    // oauth_clients: RFC 7591 registrations (`oac_…`); a confidential client's secret only as its
    // keyed hash. oauth_requests: an authorization request between /oauth/authorize and the code,
    // keyed by the keyed hash of the state sent to the identity provider; after sign-in it holds
    // the user and the keyed hash of the consent id shown on the page. oauth_codes: issued codes by
    // keyed hash, single use; what was issued from one (jti, refresh family) is kept so that a
    // replayed code revokes it. Both short-lived and purged past expiry.
    sql: `
CREATE TABLE oauth_clients (
  id TEXT PRIMARY KEY,
  secret_hash TEXT,
  name TEXT,
  redirect_uris TEXT NOT NULL,
  auth_method TEXT NOT NULL,
  grant_types TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  last_used_at BIGINT NOT NULL
);
CREATE INDEX oauth_clients_used ON oauth_clients (last_used_at);
CREATE TABLE oauth_requests (
  state_hash TEXT PRIMARY KEY,
  browser_hash TEXT NOT NULL,
  client_id TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  client_state TEXT,
  code_challenge TEXT NOT NULL,
  resource TEXT NOT NULL,
  scope TEXT,
  nonce TEXT NOT NULL,
  provider_verifier TEXT NOT NULL,
  user_id TEXT,
  granted_scope TEXT,
  consent_hash TEXT UNIQUE,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX oauth_requests_expiry ON oauth_requests (expires_at);
CREATE TABLE oauth_codes (
  hash TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  code_challenge TEXT NOT NULL,
  resource TEXT NOT NULL,
  scope TEXT NOT NULL,
  user_id TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT,
  jti TEXT,
  jti_expires_at BIGINT,
  family TEXT
);
CREATE INDEX oauth_codes_expiry ON oauth_codes (expires_at);
`,
  },
];
