import { readFileSync } from "node:fs";
import { isIPv4 } from "node:net";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { DEFAULT_AUDIT_WRITE_TIMEOUT_MS } from "./audit/audit-sink.js";
import { parsePreviousMasterKeys } from "./crypto/previous-master-keys.js";
import { parseCidrList } from "./gateway/cidr.js";
import { DEFAULT_STORE_OPTIONS } from "./store/db.js";
import { namespaceProblem, USER_PREFIX_HINT, USER_PREFIX_RULE } from "./tokens/issuer-namespaces.js";

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

const trustedIssuerSchema = z
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

const mcpSchema = z
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
const httpSchema = z
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
const databaseSchema = z
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
const streamsSchema = z
  .object({
    max_per_key: z.coerce.number().int().min(1).max(100_000).default(16),
    max_per_address: z.coerce.number().int().min(1).max(100_000).default(64),
    max_total: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  })
  .strict();
export type StreamsConfig = z.infer<typeof streamsSchema>;

/** Audit records of denials without a valid credential: sampled, a summary says how many were left out. */
const auditSchema = z
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

/**
 * The whole configuration, validated once at boot. Sources, lowest to highest precedence:
 * defaults < config file (YAML or JSON) < KEYWARD_* environment < command-line flags.
 * No secret has a default value.
 */
const schema = z
  .object({
    port: z.coerce.number().int().min(0).max(65535).default(8080),
    host: z.string().min(1).default("127.0.0.1"),
    data_dir: z.string().min(1).default("./.keyward"),
    database_url: z
      .string()
      .regex(/^(sqlite:.+|postgres(ql)?:\/\/.+)$/, "must be sqlite:PATH or postgres://…")
      .optional(),
    redis_url: z
      .string()
      .regex(/^rediss?:\/\/.+/, "must be redis://…")
      .optional(),
    /** Redis unreachable: refuse keys with a rate limit or quota (closed) or count per replica (local). */
    rate_limit_fallback: z.enum(["closed", "local"]).default("closed"),
    master_key: z.string().optional(),
    /** Retired master keys, still able to open what they sealed (crypto/README.md, rotation). */
    master_key_previous: z
      .union([z.string(), z.array(z.string())])
      .optional()
      .superRefine((v, ctx) => {
        try {
          parsePreviousMasterKeys(v, "");
        } catch (err) {
          ctx.addIssue({ code: "custom", message: (err as Error).message });
        }
      }),
    admin_token: z.string().min(32, "must be at least 32 characters").optional(),
    issuer: z
      .url({ protocol: /^https?$/, error: "must be an http(s) URL" })
      // The issuer is logged and published (metadata, `iss`): a password in it would leak there.
      .refine((u) => !URL.canParse(u) || (new URL(u).username === "" && new URL(u).password === ""), {
        message: "must not contain a user name or password",
      })
      .optional(),
    trusted_proxies: z
      .union([z.string(), z.array(z.string())])
      .default([])
      .transform((v, ctx) => {
        const list = Array.isArray(v) ? v : v.split(",").map((s) => s.trim());
        try {
          parseCidrList(list.filter(Boolean));
        } catch (err) {
          ctx.addIssue({ code: "custom", message: (err as Error).message });
          return z.NEVER;
        }
        return list.filter(Boolean);
      }),
    metrics_token: z.string().min(16, "must be at least 16 characters").optional(),
    log_level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    upstream_timeout_ms: z.coerce.number().int().min(1).max(3_600_000).default(30_000),
    shutdown_timeout_ms: z.coerce.number().int().min(0).max(600_000).default(10_000),
    audit_fail_closed: z
      .union([z.boolean(), z.enum(["true", "false"])])
      .default(true)
      .transform((v) => v === true || v === "true"),
    token_max_lifetime_s: z.coerce.number().int().min(60).max(86_400).default(3600),
    upstream_token_ttl_s: z.coerce.number().int().min(30).max(300).default(300),
    refresh_token_lifetime_s: z.coerce
      .number()
      .int()
      .min(60)
      .max(365 * 86_400)
      .default(30 * 86_400),
    max_delegation_depth: z.coerce.number().int().min(1).max(16).default(4),
    alert_webhook: z.url().optional(),
    /** Replicas on PostgreSQL: how often each reads the change log for invalidations it missed. */
    reconcile_interval_ms: z.coerce.number().int().min(50).max(60_000).default(1000),
    /** How long cached keys are trusted while the change log cannot be read (PostgreSQL away). */
    max_staleness_ms: z.coerce.number().int().min(200).max(3_600_000).default(30_000),
    /** External identity providers whose JWTs are exchanged for user tokens (SPEC §8). */
    trusted_issuers: z
      .array(trustedIssuerSchema)
      .default([])
      .superRefine((entries, ctx) => {
        const problem = namespaceProblem(entries);
        if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
      }),
    /** Upstream MCP servers behind `/mcp/{server}` (SPEC §8). */
    mcp: mcpSchema.prefault({}),
    /** Timeouts of the listening HTTP server. */
    http: httpSchema.prefault({}),
    /** Pool size and timeouts of the store (docs/operations.md, "Database timeouts"). */
    database: databaseSchema.prefault({}),
    /** Caps on open event streams (docs/operations.md, "Limits"). */
    streams: streamsSchema.prefault({}),
    /** Sampling of unauthenticated denials' audit records (docs/operations.md, "Limits"). */
    audit: auditSchema.prefault({}),
  })
  .strict()
  .refine((c) => c.max_staleness_ms >= 2 * c.reconcile_interval_ms, {
    path: ["max_staleness_ms"],
    message: "must be at least twice reconcile_interval_ms",
  });

export type Config = z.infer<typeof schema> & { config_file?: string };

/** `text` with control and line-separator characters as `\uXXXX`, so it cannot break a line. */
const printable = (text: string): string =>
  text.replace(/[\p{Cc}\u2028\u2029]/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

type Field = keyof z.infer<typeof schema>;

const ENV: Record<string, Field> = {
  KEYWARD_PORT: "port",
  KEYWARD_HOST: "host",
  KEYWARD_DATA_DIR: "data_dir",
  KEYWARD_DATABASE_URL: "database_url",
  KEYWARD_REDIS_URL: "redis_url",
  KEYWARD_RATE_LIMIT_FALLBACK: "rate_limit_fallback",
  KEYWARD_MASTER_KEY: "master_key",
  KEYWARD_MASTER_KEY_PREVIOUS: "master_key_previous",
  KEYWARD_ADMIN_TOKEN: "admin_token",
  KEYWARD_ISSUER: "issuer",
  KEYWARD_TRUSTED_PROXIES: "trusted_proxies",
  KEYWARD_METRICS_TOKEN: "metrics_token",
  KEYWARD_LOG_LEVEL: "log_level",
  KEYWARD_UPSTREAM_TIMEOUT_MS: "upstream_timeout_ms",
  KEYWARD_AUDIT_FAIL_CLOSED: "audit_fail_closed",
  KEYWARD_TOKEN_MAX_LIFETIME_S: "token_max_lifetime_s",
  KEYWARD_REFRESH_TOKEN_LIFETIME_S: "refresh_token_lifetime_s",
  KEYWARD_MAX_DELEGATION_DEPTH: "max_delegation_depth",
  KEYWARD_ALERT_WEBHOOK: "alert_webhook",
  KEYWARD_RECONCILE_INTERVAL_MS: "reconcile_interval_ms",
  KEYWARD_MAX_STALENESS_MS: "max_staleness_ms",
};

const FLAGS: Record<string, Field> = { port: "port", host: "host", "data-dir": "data_dir" };

/** Settings that must never be echoed in an error message. */
const SECRET_FIELDS = new Set<Field>([
  "master_key",
  "master_key_previous",
  "admin_token",
  "metrics_token",
  "database_url",
  "redis_url",
]);

export interface ConfigSources {
  flags?: Record<string, string | undefined>;
  env?: NodeJS.ProcessEnv;
  configFile?: string | undefined;
}

/** Merges the sources and validates; throws ConfigError naming the first wrong setting. */
export function loadConfig(sources: ConfigSources): Config {
  const raw: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  if (sources.configFile) {
    const file = readConfigFile(sources.configFile);
    for (const [k, v] of Object.entries(file)) {
      raw[k] = v;
      origin[k] = `${k} in ${sources.configFile}`;
    }
  }
  for (const [name, field] of Object.entries(ENV)) {
    const v = sources.env?.[name];
    if (v !== undefined && v !== "") {
      raw[field] = v;
      origin[field] = name;
    }
  }
  for (const [flag, v] of Object.entries(sources.flags ?? {})) {
    const field = FLAGS[flag];
    if (!field) throw new ConfigError(`unknown flag --${flag}`);
    if (v !== undefined) {
      raw[field] = v;
      origin[field] = `--${flag}`;
    }
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = String(issue?.path[0] ?? "");
    const name = origin[field] ?? field;
    let message = issue?.message ?? "invalid";
    // A key is the file's text, not ours: escape control characters so the error stays one line.
    if (issue?.code === "unrecognized_keys") message = `unknown setting ${issue.keys.map(printable).join(", ")}`;
    if (SECRET_FIELDS.has(field as Field)) message = message.replace(/"[^"]*"/g, "(value hidden)");
    throw new ConfigError(`invalid configuration: ${name ? `${name}: ` : ""}${message}`);
  }
  const cfg: Config = { ...result.data };
  if (sources.configFile) cfg.config_file = resolve(sources.configFile);
  return cfg;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(
      `invalid configuration: --config: cannot read ${path} (${(err as NodeJS.ErrnoException).code})`,
    );
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    throw new ConfigError(
      `invalid configuration: --config: ${path} is not valid YAML/JSON (${(err as Error).message.split("\n")[0]})`,
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ConfigError(`invalid configuration: --config: ${path} must hold a mapping of settings`);
  }
  return parsed as Record<string, unknown>;
}

/** Folder of the config file, against which relative paths in it resolve. */
export function configDir(cfg: Config): string {
  return cfg.config_file ? dirname(cfg.config_file) : process.cwd();
}
