import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { adminSessionsSchema } from "./admin/admin-config.js";
import { anomaliesSchema } from "./anomaly/anomaly-config.js";
import { auditSchema, databaseSchema, mcpSchema, streamsSchema } from "./config-sections.js";
import { consoleSchema } from "./console/console-config.js";
import { parsePreviousMasterKeys } from "./crypto/previous-master-keys.js";
import { parseCidrList } from "./http/client-ip.js";
import { httpSchema } from "./http/http-config.js";
import { namespaceProblem } from "./tokens/issuer-namespaces.js";
import { mcpAuthorizationSchema, signInProblem } from "./tokens/mcp-authorization-config.js";
import { trustedIssuerSchema } from "./tokens/trusted-issuers-config.js";
import { trustedWorkloadSchema, workloadListProblem } from "./tokens/trusted-workloads-config.js";
import { usageSchema } from "./usage/usage-config.js";
import { leaksSchema, webhookSecretSchema, webhooksSchema, webhookUrlSchema } from "./webhooks/webhooks-config.js";

export type {
  AuditLimitsConfig,
  DatabaseConfig,
  McpConfig,
  McpServerConfig,
  StreamsConfig,
} from "./config-sections.js";

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
    /** Keyward processes sharing that Redis (replicas × workers): leases are sized for all of them. */
    rate_limit_replicas: z.coerce.number().int().min(1).max(10_000).default(1),
    /** Overshoot of a shared limit at most, as a fraction of it (limits/lease-sizing.ts); 0: no leases. */
    rate_limit_overshoot: z.coerce.number().min(0).max(0.5).default(0.1),
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
    /** `auto`: pretty when stderr (where logs go) is a terminal, JSON otherwise. */
    log_format: z.enum(["auto", "json", "pretty"]).default("auto"),
    /** One info line per request (docs/operations.md, "Logs"); off by default, for its cost. */
    access_log: z
      .union([z.boolean(), z.enum(["true", "false", "1", "0"])])
      .default(false)
      .transform((v) => v === true || v === "true" || v === "1"),
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
    /** A webhook endpoint receiving every event type (with alert_webhook_secret; SPEC §10). */
    alert_webhook: webhookUrlSchema.optional(),
    alert_webhook_secret: webhookSecretSchema.optional(),
    /** Signed webhook endpoints fed from the outbox (docs/operations.md, "Webhooks"). */
    webhooks: webhooksSchema,
    /** `POST /v1/leaks`, secret-scanning reports (docs/operations.md, "Leaked-key reports"); absent: 404. */
    leaks: leaksSchema.optional(),
    /** Anomaly detectors as rules (SPEC §10, docs/operations.md "Anomaly rules"). */
    anomalies: anomaliesSchema.prefault({}),
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
    /** Platform identities (Kubernetes service accounts, CI jobs) exchanged for an agent's token. */
    trusted_workloads: z.array(trustedWorkloadSchema).default([]),
    /** Upstream MCP servers behind `/mcp/{server}` (SPEC §8). */
    mcp: mcpSchema.prefault({}),
    /** The authorization server for MCP clients: sign-in, registration policy (SPEC §12, oauth/). */
    mcp_authorization: mcpAuthorizationSchema.prefault({}),
    /** Timeouts of the listening HTTP server. */
    http: httpSchema.prefault({}),
    /** Pool size and timeouts of the store (docs/operations.md, "Database timeouts"). */
    database: databaseSchema.prefault({}),
    /** Caps on open event streams (docs/operations.md, "Limits"). */
    streams: streamsSchema.prefault({}),
    /** Sampling of unauthenticated denials' audit records (docs/operations.md, "Limits"). */
    audit: auditSchema.prefault({}),
    /** Usage analytics: retention per bucket size, flush interval, memory bounds (docs/operations.md, "Usage analytics"). */
    usage: usageSchema.prefault({}),
    /** Console sessions: idle and absolute expiry, sign-in attempt bounds (docs/operations.md, "Admin roles and console sessions"). */
    admin_sessions: adminSessionsSchema.prefault({}),
    /** Where the web console's build is read from (console/console-config.ts). */
    console: consoleSchema.prefault({}),
  })
  .strict()
  .refine((c) => c.max_staleness_ms >= 2 * c.reconcile_interval_ms, {
    path: ["max_staleness_ms"],
    message: "must be at least twice reconcile_interval_ms",
  })
  .superRefine((c, ctx) => {
    const problem = workloadListProblem(c.trusted_workloads, c.trusted_issuers);
    if (problem !== undefined) ctx.addIssue({ code: "custom", path: ["trusted_workloads"], message: problem });
  })
  .superRefine((c, ctx) => {
    const problem = signInProblem(c.mcp_authorization, c.trusted_issuers);
    if (problem !== undefined) ctx.addIssue({ code: "custom", path: ["mcp_authorization"], message: problem });
  })
  .refine((c) => (c.alert_webhook === undefined) === (c.alert_webhook_secret === undefined), {
    path: ["alert_webhook_secret"],
    message: "KEYWARD_ALERT_WEBHOOK and KEYWARD_ALERT_WEBHOOK_SECRET go together (deliveries are signed)",
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
  KEYWARD_RATE_LIMIT_REPLICAS: "rate_limit_replicas",
  KEYWARD_RATE_LIMIT_OVERSHOOT: "rate_limit_overshoot",
  KEYWARD_MASTER_KEY: "master_key",
  KEYWARD_MASTER_KEY_PREVIOUS: "master_key_previous",
  KEYWARD_ADMIN_TOKEN: "admin_token",
  KEYWARD_ISSUER: "issuer",
  KEYWARD_TRUSTED_PROXIES: "trusted_proxies",
  KEYWARD_METRICS_TOKEN: "metrics_token",
  KEYWARD_LOG_LEVEL: "log_level",
  KEYWARD_LOG_FORMAT: "log_format",
  KEYWARD_ACCESS_LOG: "access_log",
  KEYWARD_UPSTREAM_TIMEOUT_MS: "upstream_timeout_ms",
  KEYWARD_AUDIT_FAIL_CLOSED: "audit_fail_closed",
  KEYWARD_TOKEN_MAX_LIFETIME_S: "token_max_lifetime_s",
  KEYWARD_REFRESH_TOKEN_LIFETIME_S: "refresh_token_lifetime_s",
  KEYWARD_MAX_DELEGATION_DEPTH: "max_delegation_depth",
  KEYWARD_ALERT_WEBHOOK: "alert_webhook",
  KEYWARD_ALERT_WEBHOOK_SECRET: "alert_webhook_secret",
  KEYWARD_RECONCILE_INTERVAL_MS: "reconcile_interval_ms",
  KEYWARD_MAX_STALENESS_MS: "max_staleness_ms",
};

/** Variables that set one field of a section: `[section, field]`. */
const SECTION_ENV: Record<string, [Field, string]> = {
  KEYWARD_CONSOLE_DIR: ["console", "dir"],
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
  "alert_webhook",
  "alert_webhook_secret",
  "webhooks",
  "mcp_authorization",
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
  for (const [name, [section, key]] of Object.entries(SECTION_ENV)) {
    const v = sources.env?.[name];
    if (v !== undefined && v !== "") {
      const current = raw[section];
      raw[section] = { ...(typeof current === "object" && current !== null ? current : {}), [key]: v };
      origin[section] = name;
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
  // The sign-in client's secret: a variable of its own, so it need not sit in the file.
  const signInSecret = sources.env?.KEYWARD_MCP_SIGN_IN_CLIENT_SECRET;
  if (signInSecret !== undefined && signInSecret !== "") {
    const section = raw.mcp_authorization;
    const current = typeof section === "object" && section !== null ? (section as Record<string, unknown>) : {};
    const signIn = typeof current.sign_in === "object" && current.sign_in !== null ? current.sign_in : {};
    raw.mcp_authorization = { ...current, sign_in: { ...signIn, client_secret: signInSecret } };
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
