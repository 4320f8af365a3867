// Keyward as a user runs it: `keyward serve` from the built CLI, configured through the admin API.
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removeLater, startProcess } from "./procs.mjs";

/**
 * A config file raising the caps on open event streams (`streams`, default 16 per key and 64 per
 * address) to `n`: a benchmark opens hundreds of streams for one key from one address, which a
 * real deployment would spread over keys and hosts. For `startKeyward(root, { config })`.
 */
export function manyStreamsConfig(n) {
  return configFile(`streams:\n  max_per_key: ${n}\n  max_per_address: ${n}\n`);
}

/** A config file holding `text` (YAML or JSON), removed at the end of the run. */
export function configFile(text) {
  const path = join(removeLater(mkdtempSync(join(tmpdir(), "keyward-bench-config-"))), "keyward.yaml");
  writeFileSync(path, text);
  return path;
}

/** `env`: more KEYWARD_* settings for this server (e.g. KEYWARD_REDIS_URL); `config`: a config file; `args`: more `serve` flags. */
export async function startKeyward(root, { cpuProfDir, env = {}, config, args = [] } = {}) {
  const dataDir = removeLater(mkdtempSync(join(tmpdir(), "keyward-bench-data-")));
  const adminToken = `bench-admin-${randomBytes(24).toString("hex")}`;
  const nodeArgs = cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", cpuProfDir] : [];
  // One process unless `args` says otherwise (a later --workers wins): scenarios compare one process each.
  const serveArgs = [
    "serve",
    "--port",
    "0",
    "--data-dir",
    dataDir,
    "--workers",
    "1",
    ...(config ? ["--config", config] : []),
    ...args,
  ];
  // Kept for bench/lib/bulk-keys.mjs, which writes keys whose hashes are keyed from the store's
  // integrity root, sealed under this key. An `env` that sets its own master key wins.
  const masterKey = env.KEYWARD_MASTER_KEY ?? randomBytes(32).toString("base64");
  const { match, child, stderr } = await startProcess(
    "keyward",
    process.execPath,
    [...nodeArgs, join(root, "packages/server/dist/cli/main.js"), ...serveArgs],
    {
      env: {
        KEYWARD_ADMIN_TOKEN: adminToken,
        KEYWARD_MASTER_KEY: masterKey,
        KEYWARD_LOG_LEVEL: "warn",
        ...env,
      },
      ready: /listening on (http:\/\/\S+)/,
    },
  );
  const url = match[1];

  async function admin(method, path, body) {
    const res = await fetch(`${url}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json().catch(() => undefined);
    if (!res.ok) throw new Error(`admin ${method} ${path} → ${res.status} ${JSON.stringify(json)}`);
    return json;
  }
  return { url, dataDir, masterKey, admin, adminToken, pid: child.pid, stderr };
}

/**
 * The policy of the benchmark key: every check runs (ip_allow, scope, rate limit, quota) but none
 * ever refuses during the run.
 */
export const FULL_CHECKS = {
  scopes: ["agent:bench", "read:bench"],
  rate_limit: { limit: 1_000_000_000, window_s: 60 },
  quota: { limit: 1_000_000_000_000, period: "month" },
  ip_allow: ["127.0.0.0/8"],
};

/** An agent `bench` in front of the upstream, a consumer and one key with FULL_CHECKS. */
export async function setUpGateway(kw, upstreamUrl) {
  await kw.admin("POST", "/agents", { name: "bench", upstream: upstreamUrl });
  await kw.admin("POST", "/consumers", { name: "bench" });
  const { secret } = await kw.admin("POST", "/keys", { owner: "consumer:bench", ...FULL_CHECKS });
  return secret;
}
