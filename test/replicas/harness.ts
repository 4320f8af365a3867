// Replicas as a user runs them: `keyward serve` child processes on loopback, sharing one
// PostgreSQL schema (a fresh one per test file) and, when asked, a Redis.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

const BIN = join(import.meta.dirname, "../../packages/server/dist/cli/main.js");
export const ADMIN_TOKEN = "replica-test-admin-token-0123456789abcdef";
const MASTER_KEY = Buffer.alloc(32, 5).toString("base64");

export const pgUrl = process.env.KEYWARD_TEST_DATABASE_URL;
export const redisUrl = process.env.KEYWARD_TEST_REDIS_URL;
const hasRedisServer = spawnSync("redis-server", ["--version"]).status === 0;

/** Why this file's tests cannot run here, or undefined. Printed once by the caller. */
export function skipReason(needs: { redis?: boolean; redisServer?: boolean } = {}): string | undefined {
  if (!pgUrl) return "KEYWARD_TEST_DATABASE_URL is not set";
  if (needs.redis && !redisUrl) return "KEYWARD_TEST_REDIS_URL is not set";
  if (needs.redisServer && !hasRedisServer) return "redis-server is not installed";
  return undefined;
}

/** A schema of its own in the test database, and the URL that points a server at it. */
export async function freshSchema(): Promise<{
  name: string;
  urlVia(host: string, port: number): string;
  url: string;
  drop(): Promise<void>;
}> {
  const name = `kwt_rep_${randomBytes(5).toString("hex")}`;
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  await client.query(`CREATE SCHEMA ${name}`);
  const urlVia = (host: string, port: number) => {
    const u = new URL(pgUrl as string);
    u.hostname = host;
    u.port = String(port);
    u.searchParams.set("options", `-c search_path=${name}`);
    return u.toString();
  };
  const target = new URL(pgUrl as string);
  return {
    name,
    urlVia,
    url: urlVia(target.hostname, Number(target.port || 5432)),
    async drop() {
      await client.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`).catch(() => {});
      await client.end();
    },
  };
}

/**
 * A database of its own (not a schema in the shared one), for tests that hold or stall
 * PostgreSQL's advisory locks: those are per database, so a test that freezes the audit append
 * lock must not freeze every other test file's. Dropped with its connections on `drop()`.
 */
export async function freshDatabase(): Promise<{
  name: string;
  urlVia(host: string, port: number, params?: Record<string, string>): string;
  url: string;
  drop(): Promise<void>;
}> {
  const name = `kwt_db_${randomBytes(5).toString("hex")}`;
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  const urlVia = (host: string, port: number, params: Record<string, string> = {}) => {
    const u = new URL(pgUrl as string);
    u.hostname = host;
    u.port = String(port);
    u.pathname = `/${name}`;
    u.search = "";
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    return u.toString();
  };
  const target = new URL(pgUrl as string);
  return {
    name,
    urlVia,
    url: urlVia(target.hostname, Number(target.port || 5432)),
    async drop() {
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await client.end();
    },
  };
}

/** Host and port of the test PostgreSQL server (for a relay in front of it). */
export function pgTarget(): { host: string; port: number } {
  const u = new URL(pgUrl as string);
  return { host: u.hostname, port: Number(u.port || 5432) };
}

export interface Replica {
  name: string;
  url: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  stderr(): string;
  // biome-ignore lint/suspicious/noExplicitAny: test helper; each test asserts the shape it needs
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; headers: Headers; body: any }>;
  /** One gateway request with `secret`: the status and, for a refusal, the error code. */
  call(secret: string, agent?: string): Promise<{ status: number; code: string | undefined }>;
  /** A value from this replica's /metrics (summed over labels), 0 when absent. */
  metric(name: string): Promise<number>;
  /** The time a request takes, and what it answered. */
  timed<T>(request: () => Promise<T>): Promise<{ ms: number; value: T }>;
}

export interface ReplicaOptions {
  /** The config file's settings (written as JSON, which YAML reads), e.g. `{database: {...}}`. */
  config?: Record<string, unknown>;
}

const running = new Set<Replica>();
const dirs: string[] = [];

/** Starts one `keyward serve` and resolves when it prints its `listening on` line. */
export async function startReplica(
  name: string,
  env: Record<string, string>,
  opts: ReplicaOptions = {},
): Promise<Replica> {
  const dataDir = mkdtempSync(join(tmpdir(), "keyward-replica-"));
  dirs.push(dataDir);
  // One process per replica: these tests stop, freeze and cut the connections of "a replica" by its
  // pid, and count its database sessions. Several workers behind one port are test/workers/'s.
  const args = [BIN, "serve", "--port", "0", "--data-dir", dataDir, "--workers", "1"];
  if (opts.config) {
    const file = join(dataDir, "keyward.json");
    writeFileSync(file, JSON.stringify(opts.config));
    args.push("--config", file);
  }
  const child = spawn(process.execPath, args, {
    env: {
      PATH: process.env.PATH ?? "",
      KEYWARD_ADMIN_TOKEN: ADMIN_TOKEN,
      KEYWARD_MASTER_KEY: MASTER_KEY,
      KEYWARD_LOG_LEVEL: "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr?.on("data", (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    void exited.then((code) => reject(new Error(`replica ${name} exited (${code}) before listening: ${err}`)));
  });
  const replica: Replica = {
    name,
    url,
    child,
    exited,
    stderr: () => err,
    async admin(method, path, body) {
      const res = await fetch(`${url}/admin/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${ADMIN_TOKEN}`,
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
    },
    async call(secret, agent = "echo") {
      const res = await fetch(`${url}/agents/${agent}/echo`, { headers: { "x-api-key": secret } });
      const text = await res.text();
      const code = res.status === 200 ? undefined : (JSON.parse(text) as { error?: { code?: string } }).error?.code;
      return { status: res.status, code };
    },
    async metric(metricName) {
      const text = await (await fetch(`${url}/metrics`)).text();
      let sum = 0;
      for (const line of text.split("\n")) {
        const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
        if (m && m[1] === metricName) sum += Number(m[3]);
      }
      return sum;
    },
    async timed(request) {
      const started = performance.now();
      const value = await request();
      return { ms: performance.now() - started, value };
    },
  };
  running.add(replica);
  void exited.then(() => running.delete(replica));
  return replica;
}

/** Starts replicas in parallel (migrations and bootstrap are safe to race: that is tested too). */
export function startReplicas(
  names: string[],
  env: Record<string, string>,
  opts: ReplicaOptions = {},
): Promise<Replica[]> {
  return Promise.all(names.map((n) => startReplica(n, env, opts)));
}

/** SIGKILLs whatever is still running and removes data dirs. */
export async function stopAll(): Promise<void> {
  await Promise.all(
    [...running].map(async (r) => {
      r.child.kill("SIGCONT"); // a test may have stopped it
      r.child.kill("SIGKILL");
      await r.exited;
    }),
  );
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/**
 * Polls `probe` until `done` holds or `deadlineMs` passes (then throws, naming `what` and the
 * last value). Each poll is a real request; the pause between them only keeps the CPU free.
 */
export async function until<T>(
  what: string,
  probe: () => Promise<T>,
  done: (v: T) => boolean,
  deadlineMs: number,
): Promise<T> {
  const end = Date.now() + deadlineMs;
  let last: T;
  for (;;) {
    last = await probe();
    if (done(last)) return last;
    if (Date.now() > end) throw new Error(`${what}: not within ${deadlineMs} ms (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** A redis-server of the test's own, on a free port, that the test can stop and start again. */
export async function startRedisServer(): Promise<{
  url: string;
  start(): Promise<void>;
  kill(): Promise<void>;
}> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const server = {
    url: `redis://127.0.0.1:${port}`,
    async start() {
      const c = spawn(
        "redis-server",
        ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        {
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      child = c;
      let out = "";
      await new Promise<void>((resolve, reject) => {
        c.stdout?.on("data", (d) => {
          out += d;
          if (out.includes("Ready to accept connections")) resolve();
        });
        c.on("exit", (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
      });
    },
    async kill() {
      const c = child;
      if (!c || c.exitCode !== null) return;
      const gone = new Promise((r) => c.once("exit", r));
      c.kill("SIGKILL");
      await gone;
    },
  };
  await server.start();
  redisServers.add(server);
  return server;
}
const redisServers = new Set<{ kill(): Promise<void> }>();

export async function stopRedisServers(): Promise<void> {
  for (const s of redisServers) await s.kill();
  redisServers.clear();
}

/** An agent `echo` in front of a real upstream, and a consumer `c` to own keys. */
export async function setUpGateway(a: Replica, upstreamUrl: string): Promise<void> {
  expectStatus(await a.admin("POST", "/agents", { name: "echo", upstream: upstreamUrl }), 201);
  expectStatus(await a.admin("POST", "/consumers", { name: "c" }), 201);
}

export async function newKey(
  a: Replica,
  owner = "consumer:c",
  scopes = ["agent:*"],
  extra: Record<string, unknown> = {},
): Promise<{ id: string; secret: string }> {
  const res = await a.admin("POST", "/keys", { owner, scopes, ...extra });
  expectStatus(res, 201);
  return { id: res.body.key.id, secret: res.body.secret };
}

function expectStatus(res: { status: number; body: unknown }, status: number): void {
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
}
