import { z } from "zod";
import { DEFAULT_AUDIT_WRITE_TIMEOUT_MS } from "./audit/audit-sink.js";
import { DEFAULT_STORE_OPTIONS } from "./store/db.js";

/**
 * The schemas of the configuration's sections (MCP servers, database, streams and audit limits).
 * config.ts assembles them into the whole configuration and loads it; every default and bound of a
 * section is here, beside its documentation comment. Sections whose type a lower folder uses live
 * in that folder (http/http-config.ts, tokens/trusted-issuers-config.ts, admin/admin-config.ts, …).
 */

const MCP_SERVER_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const stdioServerSchema = z
  .object({
    command: z.string().min(1),
    args: z.array(z.string()).default([]),
    /** Fixed environment for every process of this server (no secrets: use credentials). */
    env: z.record(z.string().regex(ENV_NAME, "must be an environment variable name"), z.string()).default({}),
    /** `{ENV_VAR: credential_name}`: the user's credentials placed in the process environment. */
    env_from_user_credentials: z
      .record(z.string().regex(ENV_NAME, "must be an environment variable name"), z.string().min(1))
      .default({}),
    cwd: z.string().min(1).optional(),
  })
  .strict();

const httpServerSchema = z
  .object({
    url: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }),
    /** `{Header: "template with {credential_name}"}`: the user's credentials sent as headers. */
    headers_from_user_credentials: z
      .record(z.string().regex(HEADER_NAME, "must be a header name"), z.string().min(1))
      .default({}),
  })
  .strict();

export const mcpSchema = z
  .object({
    servers: z
      .record(
        z.string().regex(MCP_SERVER_NAME, "a server name is a slug [a-z0-9][a-z0-9-]{0,62}"),
        z.union([stdioServerSchema, httpServerSchema]),
      )
      .default({}),
    /** Most stdio processes alive at once on this replica (all servers, all users). */
    max_processes: z.coerce.number().int().min(1).max(10_000).default(100),
    /** A user's stdio process with no call for this long is stopped. */
    idle_timeout_s: z.coerce.number().int().min(1).max(86_400).default(300),
    /** An upstream that has not answered MCP `initialize` by then is stopped (node with an SDK takes ~0.5 s to boot). */
    start_timeout_ms: z.coerce.number().int().min(100).max(600_000).default(15_000),
    /** Calls one user may have in flight on one server; past it a call is refused at once. */
    max_calls_per_user: z.coerce.number().int().min(1).max(10_000).default(64),
    /** A `tools/call` that takes longer gets a tool error (the process is restarted). */
    tool_timeout_ms: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  })
  .strict();

/**
 * Bounds on every database call (docs/operations.md, "Database timeouts"). PostgreSQL gets
 * statement, lock and idle-in-transaction timeouts on each pooled session; the client also stops
 * waiting on its own (a stalled connection returns no error) and drops that connection. A lock
 * holder that stopped (SIGSTOP, GC pause, partition) is ended by the server after
 * `idle_in_transaction_timeout_ms`, which frees what it held. Defaults: store/db.ts.
 */
const ms = (min: number, max: number, fallback: number) => z.coerce.number().int().min(min).max(max).default(fallback);
export const databaseSchema = z
  .object({
    /** Connections per replica (PostgreSQL). */
    pool_size: z.coerce.number().int().min(1).max(1000).default(DEFAULT_STORE_OPTIONS.poolSize),
    /** Opening a connection, or waiting for a free one in the pool; also bounds /readyz's probe. */
    connect_timeout_ms: ms(100, 600_000, DEFAULT_STORE_OPTIONS.connectTimeoutMs),
    /** PostgreSQL `statement_timeout`. */
    statement_timeout_ms: ms(100, 3_600_000, DEFAULT_STORE_OPTIONS.statementTimeoutMs),
    /** PostgreSQL `lock_timeout`: the audit append lock, a row lock. */
    lock_timeout_ms: ms(50, 3_600_000, DEFAULT_STORE_OPTIONS.lockTimeoutMs),
    /** PostgreSQL `idle_in_transaction_session_timeout`. */
    idle_in_transaction_timeout_ms: ms(100, 3_600_000, DEFAULT_STORE_OPTIONS.idleInTransactionTimeoutMs),
    /** Client side, per query; absent: statement_timeout_ms + 2000. */
    query_timeout_ms: z.coerce.number().int().min(100).max(3_600_000).optional(),
    /** Client side, per transaction. */
    transaction_timeout_ms: ms(100, 3_600_000, DEFAULT_STORE_OPTIONS.transactionTimeoutMs),
    /** An audit batch not committed within this counts as failed (fail-closed requests get 503). */
    audit_write_timeout_ms: ms(100, 600_000, DEFAULT_AUDIT_WRITE_TIMEOUT_MS),
    /** SQLite `busy_timeout` (blocks the process while it waits). */
    busy_timeout_ms: ms(0, 60_000, DEFAULT_STORE_OPTIONS.busyTimeoutMs),
  })
  .strict();
export type DatabaseConfig = z.infer<typeof databaseSchema>;

/** Event streams (`/v1/credentials/events`) open at once; past a cap a stream is refused with 429. */
export const streamsSchema = z
  .object({
    max_per_key: z.coerce.number().int().min(1).max(100_000).default(16),
    max_per_address: z.coerce.number().int().min(1).max(100_000).default(64),
    max_total: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  })
  .strict();
export type StreamsConfig = z.infer<typeof streamsSchema>;

/** Audit records of denials without a valid credential: sampled, a summary says how many were left out. */
export const auditSchema = z
  .object({
    unauthenticated_denials_per_address_per_minute: z.coerce.number().int().min(0).max(1_000_000).default(20),
    unauthenticated_denials_per_minute: z.coerce.number().int().min(0).max(10_000_000).default(600),
    denial_addresses_tracked: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  })
  .strict();
export type AuditLimitsConfig = z.infer<typeof auditSchema>;

export type McpConfig = z.infer<typeof mcpSchema>;
export type McpServerConfig = McpConfig["servers"][string];
