import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { stringify as toYaml } from "yaml";
import { ConfigError, loadConfig } from "./config.js";

/**
 * Property tests of the configuration loader: random config files (YAML, JSON, junk) and random
 * KEYWARD_* values either load or fail with the documented error (a ConfigError, one line starting
 * `invalid configuration:`), and that line never holds the master key or the admin token.
 */
const dir = mkdtempSync(join(tmpdir(), "kw-cfg-fuzz-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;

const FIELDS = [
  "port",
  "host",
  "data_dir",
  "database_url",
  "redis_url",
  "rate_limit_fallback",
  "master_key",
  "master_key_previous",
  "admin_token",
  "issuer",
  "trusted_proxies",
  "metrics_token",
  "log_level",
  "upstream_timeout_ms",
  "shutdown_timeout_ms",
  "audit_fail_closed",
  "token_max_lifetime_s",
  "upstream_token_ttl_s",
  "refresh_token_lifetime_s",
  "max_delegation_depth",
  "alert_webhook",
  "reconcile_interval_ms",
  "max_staleness_ms",
  "trusted_issuers",
  "mcp",
  "http",
];
const ENV_NAMES = [
  "KEYWARD_PORT",
  "KEYWARD_HOST",
  "KEYWARD_DATA_DIR",
  "KEYWARD_DATABASE_URL",
  "KEYWARD_REDIS_URL",
  "KEYWARD_RATE_LIMIT_FALLBACK",
  "KEYWARD_MASTER_KEY_PREVIOUS",
  "KEYWARD_ISSUER",
  "KEYWARD_TRUSTED_PROXIES",
  "KEYWARD_METRICS_TOKEN",
  "KEYWARD_LOG_LEVEL",
  "KEYWARD_UPSTREAM_TIMEOUT_MS",
  "KEYWARD_AUDIT_FAIL_CLOSED",
  "KEYWARD_TOKEN_MAX_LIFETIME_S",
  "KEYWARD_REFRESH_TOKEN_LIFETIME_S",
  "KEYWARD_MAX_DELEGATION_DEPTH",
  "KEYWARD_ALERT_WEBHOOK",
  "KEYWARD_RECONCILE_INTERVAL_MS",
  "KEYWARD_MAX_STALENESS_MS",
];

/** Strings a setting might plausibly hold, right or wrong. */
const settingString = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.integer({ min: -10, max: 10_000_000 }).map(String),
  fc.constantFrom(
    "",
    " ",
    "0",
    "1e3",
    "NaN",
    "true",
    "maybe",
    "local",
    "debug",
    "sqlite:/tmp/x.db",
    "postgres://u:p@h/db",
    "redis://r:6379",
    "http://127.0.0.1:9",
    "https://idp.example/jwks",
    "ftp://x",
    "10.0.0.0/8",
    "10.0.0.0/33, nonsense",
    Buffer.alloc(32, 1).toString("base64"),
    "QUJD",
    "ES256",
    "none",
    "acme-",
  ),
);
const settingValue = fc.oneof(
  { depthSize: "small" },
  settingString,
  fc.jsonValue({ maxDepth: 2 }),
  fc.array(settingString, { maxLength: 3 }),
);
const sectionKeys = {
  trusted_issuers: [
    "issuer",
    "jwks_uri",
    "audience",
    "subject_claim",
    "user_prefix",
    "share_user_ids_with_keys",
    "scopes",
    "algorithms",
  ],
  mcp: ["servers", "max_processes", "idle_timeout_s", "start_timeout_ms", "max_calls_per_user", "tool_timeout_ms"],
  http: ["headers_timeout_ms", "request_timeout_ms", "keep_alive_timeout_ms"],
};
const section = (keys: string[]) =>
  fc.dictionary(fc.oneof(fc.constantFrom(...keys), fc.string({ maxLength: 8 })), settingValue, { maxKeys: 6 });
const configObject = fc.dictionary(
  fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...FIELDS) },
    fc.string({ maxLength: 12 }),
    fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty"),
  ),
  settingValue,
  { maxKeys: 8 },
);
const withSections = fc
  .tuple(
    configObject,
    fc.option(fc.array(section(sectionKeys.trusted_issuers), { maxLength: 3 }), { nil: undefined }),
    fc.option(
      fc.record({
        servers: fc.dictionary(fc.string({ maxLength: 10 }), section(["command", "args", "env", "url", "cwd"]), {
          maxKeys: 2,
        }),
        rest: section(sectionKeys.mcp),
      }),
      { nil: undefined },
    ),
    fc.option(section(sectionKeys.http), { nil: undefined }),
  )
  .map(([top, issuers, mcp, http]) => ({
    ...top,
    ...(issuers ? { trusted_issuers: issuers } : {}),
    ...(mcp ? { mcp: { ...mcp.rest, servers: mcp.servers } } : {}),
    ...(http ? { http } : {}),
  }));

/** A distinctive secret value: short (an invalid admin token) or long, quotes and spaces included. */
const canary = fc
  .tuple(fc.constantFrom("", '"', "'", " ", "\\", "%"), fc.integer({ min: 4, max: 40 }))
  .map(([odd, n]) => `kwcanary${odd}${randomBytes(n).toString("hex")}`.slice(0, 8 + odd.length + n));

/** How the file is written: YAML or JSON of the object, that YAML damaged, or junk in its place. */
const fileForm = fc.record({
  format: fc.constantFrom("yaml", "json", "damaged", "junk"),
  at: fc.nat(),
  junk: fc.string({
    unit: fc.constantFrom(":", "-", "[", "{", "&a", "*a", "\t", "\n", "'", '"', "#", "?", "<<"),
    maxLength: 6,
  }),
  raw: fc.string({ unit: "binary", maxLength: 200 }),
});

function fileText(
  obj: Record<string, unknown>,
  form: typeof fileForm extends fc.Arbitrary<infer T> ? T : never,
): string {
  if (form.format === "json") return JSON.stringify(obj);
  if (form.format === "junk") return form.raw;
  const text = toYaml(obj);
  if (form.format === "yaml") return text;
  const i = text.length === 0 ? 0 : form.at % text.length;
  return text.slice(0, i) + form.junk + text.slice(i);
}

const sources = fc.record({
  file: fc.option(fc.tuple(withSections, fileForm), { nil: undefined }),
  env: fc.dictionary(fc.constantFrom(...ENV_NAMES), settingString, { maxKeys: 5 }),
  flags: fc.dictionary(fc.constantFrom("port", "host", "data-dir"), settingString, { maxKeys: 2 }),
  masterKey: canary,
  adminToken: canary,
  /** The secrets also in the file (`master_key`, `admin_token`), where the env then overrides them. */
  inFile: fc.boolean(),
});

describe("configuration loader, fuzzed", () => {
  it("loads or fails with one line naming the setting, never echoing the master key or admin token", () => {
    fc.assert(
      fc.property(sources, ({ file, env, flags, masterKey, adminToken, inFile }) => {
        let configFile: string | undefined;
        if (file !== undefined) {
          const [obj, form] = file;
          configFile = join(dir, `k${fileNo++}.yaml`);
          const planted = inFile ? { ...obj, master_key: masterKey, admin_token: adminToken } : obj;
          const text = fileText(planted, form);
          writeFileSync(configFile, text);
        }
        let error: unknown;
        try {
          loadConfig({
            env: { ...env, KEYWARD_MASTER_KEY: masterKey, KEYWARD_ADMIN_TOKEN: adminToken },
            flags,
            configFile,
          });
        } catch (err) {
          error = err;
        }
        if (error === undefined) return;
        expect(error).toBeInstanceOf(ConfigError);
        const message = (error as Error).message;
        expect(message).toMatch(/^invalid configuration: \S/);
        expect(message).not.toMatch(/[\r\n]/);
        expect(message).not.toContain(masterKey);
        expect(message).not.toContain(adminToken);
      }),
      { numRuns: 200 },
    );
  });

  // Found by fuzzing: a trusted issuer whose `jwks_uri` was no URL at all (`""`) made loadConfig
  // throw `TypeError: Invalid URL` (the https-or-loopback refine ran after z.url() failed).
  it("refuses a jwks_uri that is no URL with the one-line ConfigError", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 20 }).filter((u) => !URL.canParse(u)),
        (uri) => {
          const file = join(dir, `k${fileNo++}.yaml`);
          writeFileSync(
            file,
            toYaml({ trusted_issuers: [{ issuer: "https://idp.example", audience: "kw", jwks_uri: uri }] }),
          );
          expect(() => loadConfig({ env: {}, configFile: file })).toThrow(ConfigError);
        },
      ),
      { numRuns: 50, examples: [[""]] },
    );
  });

  // Found by fuzzing: an unknown setting used to be named verbatim, so a key holding a line break
  // (the file `{"a\nb": 1}`) made the one-line error (SPEC §1) two lines.
  it("keeps the error on one line whatever the unknown key holds", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 8 }),
        fc.constantFrom("\n", "\r", "\r\n"),
        fc.string({ maxLength: 8 }),
        (a, nl, b) => {
          const file = join(dir, `k${fileNo++}.yaml`);
          writeFileSync(file, JSON.stringify({ [a + nl + b]: 1 }));
          let message = "";
          try {
            loadConfig({ env: {}, configFile: file });
          } catch (err) {
            message = (err as Error).message;
          }
          expect(message).toMatch(/^invalid configuration: [^\r\n]*$/);
        },
      ),
      { numRuns: 50, examples: [["a", "\n", "b"]] },
    );
  });

  // Issue 18 finding 8f: the issuer is logged at start and published in metadata, so a password in
  // it leaked; it is now refused, naming the setting and never echoing the value.
  it("refuses an issuer holding a user name or password, without echoing it", () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z0-9]{1,12}$/),
        fc.option(fc.stringMatching(/^[A-Za-z0-9]{6,16}$/), { nil: undefined }),
        (user, password) => {
          const secret = password ?? user;
          const issuer = `https://${user}${password === undefined ? "" : `:${password}`}@kw.example/`;
          let message = "";
          try {
            loadConfig({ env: { KEYWARD_ISSUER: issuer } });
          } catch (err) {
            expect(err).toBeInstanceOf(ConfigError);
            message = (err as Error).message;
          }
          expect(message).toBe("invalid configuration: KEYWARD_ISSUER: must not contain a user name or password");
          expect(message).not.toContain(`${secret}@`);
        },
      ),
      { numRuns: 50 },
    );
    expect(loadConfig({ env: { KEYWARD_ISSUER: "https://kw.example/" } }).issuer).toBe("https://kw.example/");
  });
});
