import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { UpstreamSpec } from "../../src/mcp/mcp-upstream-spec.js";
import type { UserCredentialLookup, UserCredentialSource } from "../../src/users/user-credential-source.js";
import type { TestServer } from "../server.js";

const here = fileURLToPath(new URL(".", import.meta.url));
export const TOOLS_SERVER = join(here, "mcp-tools-server.mjs");
export const GARBAGE_SERVER = join(here, "mcp-garbage-server.mjs");
export const EXIT_SERVER = join(here, "mcp-exit-server.mjs");
export const FLOOD_SERVER = join(here, "mcp-flood-server.mjs");

/** What the test tool server answers for an access key (mcp-tools-server.mjs `accountOf`). */
export const accountOf = (key: string): string => `acct-${createHash("sha256").update(key).digest("hex").slice(0, 12)}`;

/** A stdio spec for one of the test servers, its key in CLOUD_KEY from credential `cloud_key`. */
export function stdioSpec(script = TOOLS_SERVER, env: Record<string, string> = {}, name = "cloud"): UpstreamSpec {
  return {
    kind: "stdio",
    name,
    command: process.execPath,
    args: [script],
    cwd: here,
    env,
    envFromCredentials: { CLOUD_KEY: "cloud_key" },
    credentials: ["cloud_key"],
  };
}

/** An in-memory UserCredentialSource for unit tests (the real one is the users module's). */
export function memoryCredentials() {
  const values = new Map<string, Map<string, string>>();
  const listeners: Array<(user: string) => void> = [];
  const source: UserCredentialSource & {
    set(user: string, name: string, value: string): void;
    remove(user: string, name: string): void;
  } = {
    async resolve(user, names): Promise<UserCredentialLookup> {
      const mine = values.get(user) ?? new Map();
      const found: Record<string, string> = {};
      for (const n of names) {
        const v = mine.get(n);
        if (v === undefined) return { ok: false, missing: n };
        found[n] = v;
      }
      return { ok: true, values: found };
    },
    onChange(listener) {
      listeners.push(listener);
    },
    set(user, name, value) {
      if (!values.has(user)) values.set(user, new Map());
      values.get(user)?.set(name, value);
      for (const l of listeners) l(user);
    },
    remove(user, name) {
      values.get(user)?.delete(name);
      for (const l of listeners) l(user);
    },
  };
  return source;
}

/** The text of a tool result's content, joined. */
export function textOf(result: unknown): string {
  const content = (result as CallToolResult).content ?? [];
  return content.map((c) => (c.type === "text" ? c.text : "")).join("");
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits for a condition only the OS can tell us (a process gone), checking every 20 ms. */
export async function eventually(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface McpFixtureConfig {
  /** URL of an HTTP upstream for server `tickets`, when the test has one. */
  ticketsUrl?: string;
  toolTimeoutMs?: number;
  maxProcesses?: number;
  idleTimeoutS?: number;
  maxCallsPerUser?: number;
  /** Extra fixed env for the `cloud` server. */
  cloudEnv?: Record<string, string>;
}

/**
 * A config file in a fresh folder: `cloud` runs `node tool.mjs` with tool.mjs beside the file
 * (exercising "relative args resolve against the config file's folder"), `garbage` and `dead`
 * are broken upstreams, `tickets` an HTTP upstream with an injected Authorization header.
 */
export function writeMcpConfig(opts: McpFixtureConfig = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "keyward-mcp-"));
  writeFileSync(join(dir, "tool.mjs"), `import ${JSON.stringify(TOOLS_SERVER)};\n`);
  const servers: Record<string, unknown> = {
    cloud: {
      command: process.execPath,
      args: ["tool.mjs"],
      env: opts.cloudEnv ?? {},
      env_from_user_credentials: { CLOUD_KEY: "cloud_key" },
    },
    garbage: {
      command: process.execPath,
      args: [GARBAGE_SERVER],
      env_from_user_credentials: { CLOUD_KEY: "cloud_key" },
    },
    dead: { command: process.execPath, args: [EXIT_SERVER] },
  };
  if (opts.ticketsUrl) {
    servers.tickets = {
      url: opts.ticketsUrl,
      headers_from_user_credentials: { Authorization: "Bearer {ticket_token}" },
    };
  }
  const config = {
    mcp: {
      servers,
      ...(opts.toolTimeoutMs ? { tool_timeout_ms: opts.toolTimeoutMs } : {}),
      ...(opts.maxProcesses ? { max_processes: opts.maxProcesses } : {}),
      ...(opts.idleTimeoutS ? { idle_timeout_s: opts.idleTimeoutS } : {}),
      ...(opts.maxCallsPerUser ? { max_calls_per_user: opts.maxCallsPerUser } : {}),
    },
  };
  const file = join(dir, "keyward.json");
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** A user key (`kwk_…`) for `user:<id>` with these scopes. */
export async function userKey(server: TestServer, user: string, scopes: string[]): Promise<string> {
  const r = await server.admin("POST", "/keys", { owner: `user:${user}`, scopes });
  if (r.status !== 201) throw new Error(`key for ${user}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.secret as string;
}

export async function setUserCredential(server: TestServer, user: string, name: string, value: string): Promise<void> {
  const r = await server.admin("PUT", `/users/${user}/credentials/${name}`, { value });
  if (r.status !== 200 && r.status !== 201) throw new Error(`credential ${name} of ${user}: ${r.status}`);
}

/** The official MCP SDK client, connected to `/mcp/<name>` with a bearer value. */
export async function mcpClient(base: string, name: string, bearer: string): Promise<Client> {
  const client = new Client({ name: "test-client", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp/${name}`), {
    requestInit: { headers: { Authorization: `Bearer ${bearer}` } },
  });
  await client.connect(transport);
  return client;
}
