// Hand-written views of the admin API responses the pages read. The server's zod schemas
// (packages/server/src/*/…-schemas.ts) are the source of truth; importing them here would pull zod
// and server code into the browser bundle, so only the fields the console uses are repeated.

export type Role = "owner" | "operator" | "viewer" | "auditor";

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface Session {
  admin_token: { id: string; name: string; role: Role };
  csrf_token: string;
  expires_at: string;
  idle_timeout_s: number;
}

export interface Agent {
  name: string;
  upstream: string;
  description: string | null;
  created_at: string;
}

export interface Consumer {
  name: string;
  created_at: string;
}

export type KeyStatus = "active" | "revoked" | "frozen" | "expired";

export interface Key {
  id: string;
  prefix: string;
  owner: string;
  name: string | null;
  scopes: string[];
  status: KeyStatus;
  expires_at: string | null;
  rate_limit: { limit: number; window_s: number } | null;
  quota: { limit: number; period: "day" | "month" | "total" } | null;
  ip_allow: string[] | null;
  rotated_to: string | null;
  last_used_at: string | null;
  created_at: string;
}

/** A new or rotated key: the only response that carries a key's secret. */
export interface IssuedKey {
  key: Key;
  secret: string;
}

export interface Credential {
  name: string;
  type: "static" | "oauth2_client_credentials";
  version: number | null;
  status: "ok" | "pending" | "error" | "deleted";
  status_message: string | null;
  updated_at: string;
}

export interface UserListed {
  user: string;
  credentials: { name: string; version: number; updated_at: string }[];
}

export interface AuditEvent {
  seq: number;
  time: string;
  actor: string;
  action: string;
  target?: string;
  outcome: "success" | "denied" | "failure";
  code?: string;
  ip?: string;
}

export interface AuditPage {
  events: AuditEvent[];
  next_cursor: string | null;
}

export type AuditVerify =
  | { ok: true; count: number; head: string }
  | { ok: false; reason: "altered" | "truncated" | "rolled_back"; first_broken_seq: number; count: number };

export interface Alert {
  id: string;
  rule: string;
  severity: "info" | "warning" | "critical";
  status: "open" | "acked";
  key_id?: string;
  created_at: string;
}

export interface UsageBucket {
  t: string;
  allowed: number;
  denied: Record<string, number>;
}

export interface UsageGroup {
  id: string;
  allowed: number;
  denied: number;
  denied_by_code: Record<string, number>;
}

export interface UsageTop {
  from: string;
  to: string;
  items: UsageGroup[];
}

export interface KeyAddress {
  ip: string;
  first_seen: string;
  last_seen: string;
  count: number;
}

export interface AdminToken {
  id: string;
  name: string;
  role: Role;
  status: "active" | "revoked";
  created_at: string;
}

export interface AdminTokenCreated {
  admin_token: AdminToken;
  secret: string;
}

export interface CredentialDetail extends Credential {
  egress: { base_url: string; header: string; format: string } | null;
  provider: { token_url: string; client_id: string; scope: string | null } | null;
  versions: {
    version: number;
    source: string;
    rolled_back_from: number | null;
    created_at: string;
    created_by: string;
  }[];
}

export interface Grants {
  agent: string;
  credentials: { name: string; mode: "read" | "inject" }[];
  user_credentials: string[];
  may_call: string[];
}
