// Starts the whole example: the fake cloud, Keyward (`keyward serve --config keyward.yaml`, as a
// child process) and its users, each with a key for `/mcp/cloud` and their own cloud access key.
//   node examples/mcp-tools/start.mjs     (prints the MCP endpoint and the users' keys; Ctrl-C stops)
// client.mjs does the same and then calls the tool as each user.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { startFakeCloud } from "./fake-cloud.mjs";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const KEYWARD_BIN = process.env.KEYWARD_BIN ?? resolve(HERE, "../../packages/server/dist/cli/main.js");

/** The demo's users: alice and bob have linked their cloud accounts, carol has not. */
export const DEMO_USERS = [
  { id: "alice", functions: ["alice-etl", "alice-report"] },
  { id: "bob", functions: ["bob-chatbot"] },
  { id: "carol", functions: [], linked: false },
];

/** An access key shaped like Alibaba Cloud's (`LTAI` + 20 characters), fresh for every run. */
export function newAccessKey() {
  return `LTAI${randomBytes(15).toString("base64url").replace(/[-_]/g, "x").slice(0, 20)}`;
}

/**
 * Starts everything and sets up `users` (`{id, functions, linked?}`): a key with owner `user:<id>`
 * and scope `mcp:cloud` for each, and, unless `linked` is false, the user's `aliyun_ak`.
 * `mcp` overrides settings of the config's `mcp` block (e.g. `{max_processes: 60}`); `workers` is
 * `keyward serve --workers` (default: the CLI's, one per core).
 * Resolves with `{keywardUrl, mcpUrl, users: {<id>: {key, accessKey?}}, cloud, admin, logs, close}`.
 */
export async function startExample({
  users = DEMO_USERS,
  mcp = {},
  logLevel = "warn",
  accessLog = false,
  workers,
} = {}) {
  const dir = mkdtempSync(join(tmpdir(), "keyward-mcp-tools-"));
  const accessKeys = Object.fromEntries(users.filter((u) => u.linked !== false).map((u) => [u.id, newAccessKey()]));
  const accounts = Object.fromEntries(
    users.filter((u) => accessKeys[u.id]).map((u) => [accessKeys[u.id], { account: u.id, functions: u.functions }]),
  );
  let cloud;
  let keyward;
  const close = async () => {
    await keyward?.stop();
    await cloud?.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    cloud = await startFakeCloud({ accounts });
    const configFile = writeRunConfig(dir, cloud.url, mcp);
    const adminToken = `mcp-example-admin-${randomBytes(24).toString("hex")}`;
    keyward = await serve(configFile, join(dir, "data"), workers, {
      KEYWARD_ADMIN_TOKEN: adminToken,
      KEYWARD_MASTER_KEY: randomBytes(32).toString("base64"),
      KEYWARD_LOG_LEVEL: logLevel,
      KEYWARD_ACCESS_LOG: accessLog ? "1" : "0",
    });
    const admin = adminClient(keyward.url, adminToken);
    const out = {};
    for (const u of users) {
      const created = await admin("POST", "/keys", {
        owner: `user:${u.id}`,
        name: "mcp-tools example",
        scopes: ["mcp:cloud"],
      });
      out[u.id] = { key: created.secret };
      if (accessKeys[u.id]) {
        await admin("PUT", `/users/${u.id}/credentials/aliyun_ak`, { value: accessKeys[u.id] });
        out[u.id].accessKey = accessKeys[u.id];
      }
    }
    return {
      keywardUrl: keyward.url,
      mcpUrl: `${keyward.url}/mcp/cloud`,
      users: out,
      cloud,
      admin,
      logs: keyward.logs,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * keyward.yaml as it is, with the fake cloud's URL (known only now) filled in and `args` made
 * absolute (the copy lives in a temp folder, and relative paths resolve against the config's).
 */
function writeRunConfig(dir, cloudUrl, mcpOverrides) {
  const config = parseYaml(readFileSync(join(HERE, "keyward.yaml"), "utf8"));
  const cloud = config.mcp.servers.cloud;
  cloud.env = { ...cloud.env, FAKE_CLOUD_URL: cloudUrl };
  cloud.args = cloud.args.map((a) => resolve(HERE, a));
  Object.assign(config.mcp, mcpOverrides);
  const file = join(dir, "keyward.yaml");
  writeFileSync(file, stringifyYaml(config));
  return file;
}

/** `keyward serve` as a child process; resolves once it prints its `listening on` line. */
export function serve(configFile, dataDir, workers, env) {
  const args = [KEYWARD_BIN, "serve", "--config", configFile, "--port", "0", "--data-dir", dataDir];
  if (workers !== undefined) args.push("--workers", String(workers));
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const exited = new Promise((done) => child.once("exit", (code, signal) => done(code ?? signal)));
  child.stderr.setEncoding("utf8").on("data", (d) => (err += d));
  return new Promise((ready, fail) => {
    child.stdout.setEncoding("utf8").on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) ready({ url: m[1], logs: () => out + err, stop });
    });
    exited.then((code) => fail(new Error(`keyward serve exited (${code}) before listening: ${err.trim()}`)));
  });

  async function stop() {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  }
}

function adminClient(keywardUrl, adminToken) {
  return async (method, path, body) => {
    const res = await fetch(`${keywardUrl}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const parsed = text ? JSON.parse(text) : undefined;
    if (!res.ok) {
      const e = parsed?.error;
      throw new Error(`Keyward admin API: ${method} ${path} answered ${res.status} (${e?.code}: ${e?.message})`);
    }
    return parsed;
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const example = await startExample();
  console.log(`fake cloud listening on ${example.cloud.url}`);
  console.log(`MCP endpoint: ${example.mcpUrl}`);
  for (const [id, u] of Object.entries(example.users)) {
    console.log(`  ${id.padEnd(6)} Authorization: Bearer ${u.key}${u.accessKey ? "" : "   (no aliyun_ak set)"}`);
  }
  const stop = () => example.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
