import { isIPv4 } from "node:net";
import { z } from "zod";
import { DEFAULT_AUDIT_WRITE_TIMEOUT_MS } from "./audit/audit-sink.js";
import { DEFAULT_STORE_OPTIONS } from "./store/db.js";
import { USER_PREFIX_HINT, USER_PREFIX_RULE } from "./tokens/issuer-namespaces.js";

/**
 * The schemas of the configuration's sections (trusted issuers, MCP servers, HTTP, database,
 * streams and audit limits). config.ts assembles them into the whole configuration and loads it;
 * every default and bound of a section is here, beside its documentation comment.
 */

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** `jwks_uri` must be https, except on loopback (a local test issuer). */
const jwksUri = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).refine(
  (u) => {
    // zod runs this refine even when z.url() already failed: that failure is the one to report.
    if (!URL.canParse(u)) return true;
    const url = new URL(u);
    // isIPv4 first: a name such as `127.example.com` is not loopback, whatever its first label says.
    const loopback4 = isIPv4(url.hostname) && url.hostname.startsWith("127.");
    return url.protocol === "https:" || LOOPBACK_HOSTS.has(url.hostname) || loopback4;
  },
  { message: "jwks_uri must be https (plain http only on loopback)" },
);

export const trustedIssuerSchema = z
  .object({
    issuer: z.string().min(1),
    jwks_uri: jwksUri,
    /** The `aud` the external JWT must carry (one of them, when a list). */
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    /** The claim that becomes `user:<user_prefix><value>` (default `sub`); `email` needs `email_verified: true`. */
    subject_claim: z.string().min(1).default("sub"),
    /** Put before the claim's value, so each issuer's users are apart (tokens/issuer-namespaces.ts). */
    user_prefix: z.string().regex(USER_PREFIX_RULE, USER_PREFIX_HINT).optional(),
    /** No prefix, on purpose: this issuer's users are the `user:<id>` of admin-made keys. */
    share_user_ids_with_keys: z.boolean().default(false),
    /** The scopes the minted user token carries. */
    scopes: z.array(z.string().min(1).regex(/^\S+$/, "a scope has no spaces")).default([]),
    /** Signature algorithms accepted from this issuer (pinned; never `none` or HMAC). */
    algorithms: z
      .array(z.enum(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]))
      .min(1)
      .default(["RS256", "ES256"]),
  })
  .strict();

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
 * Timeouts of the listening server (docs/operations.md, "HTTP timeouts"). Node applies
 * `request_timeout_ms` to receiving a request (headers and body), never to the response, so a
 * long SSE or streamed answer is not cut by it; a client uploading slower than this is.
 */
export const httpSchema = z
  .object({
    /** A client must finish sending its headers within this (slowloris). */
    // 60 s, as Node's and nginx's defaults: at 10 s a replica under CPU pressure (1,000 MCP calls
    // on two cores) answered 408 to well-behaved clients whose first bytes waited in line.
    headers_timeout_ms: z.coerce.number().int().min(100).max(600_000).default(60_000),
    /** A client must finish sending its whole request (headers and body) within this. */
    request_timeout_ms: z.coerce.number().int().min(100).max(86_400_000).default(120_000),
    /** An idle keep-alive connection is closed after this (above common load balancers' 60 s). */
    keep_alive_timeout_ms: z.coerce.number().int().min(100).max(600_000).default(65_000),
  })
  .strict()
  .refine((h) => h.headers_timeout_ms <= h.request_timeout_ms, {
    path: ["headers_timeout_ms"],
    message: "http.headers_timeout_ms must not exceed http.request_timeout_ms",
  });
export type HttpConfig = z.infer<typeof httpSchema>;

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

export type TrustedIssuerConfig = z.infer<typeof trustedIssuerSchema>;
export type McpConfig = z.infer<typeof mcpSchema>;
export type McpServerConfig = McpConfig["servers"][string];
