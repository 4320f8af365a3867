import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

// `keyward serve` as a user starts it (the built CLI, a child process): what its logs look like
// for each setting, and that no credential sent to it reaches them.
const BIN = join(import.meta.dirname, "../packages/server/dist/cli/main.js");
const ADMIN = "logs-test-admin-token-0123456789abcdef";
const MASTER = Buffer.alloc(32, 7).toString("base64");
const CANARY = "kwk_logcanary0123456789abcdefghijklmn";

interface Run {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

const dirs: string[] = [];
const running: Run[] = [];
let upstream: http.Server;
let upstreamUrl: string;

beforeAll(async () => {
  upstream = http.createServer((_req, res) => res.end("ok"));
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => upstream.close(() => r())));
afterEach(async () => {
  for (const p of running.splice(0)) {
    if (p.child.exitCode === null) p.child.kill("SIGKILL");
    await p.exited;
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function serve(env: Record<string, string>): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), "keyward-logs-"));
  dirs.push(dir);
  const child = spawn(process.execPath, [BIN, "serve", "--port", "0", "--data-dir", dir], {
    env: { PATH: process.env.PATH ?? "", KEYWARD_ADMIN_TOKEN: ADMIN, KEYWARD_MASTER_KEY: MASTER, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr?.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const run = { child, url: "", stdout: () => out, stderr: () => err, exited };
  running.push(run);
  run.url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    void exited.then((code) => reject(new Error(`keyward exited (${code}): ${err}`)));
  });
  return run;
}

/** A consumer key allowed through `/agents/echo/…`, plus requests carrying the canary everywhere. */
async function traffic(url: string): Promise<{ keyId: string; secret: string }> {
  const admin = (path: string, body: unknown) =>
    fetch(`${url}/admin/v1${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    }).then((r) => r.json() as Promise<{ key?: { id: string }; secret?: string }>);
  await admin("/agents", { name: "echo", upstream: upstreamUrl });
  await admin("/consumers", { name: "c" });
  const key = await admin("/keys", { owner: "consumer:c", scopes: ["agent:echo"] });
  const ok = await fetch(`${url}/agents/echo/hello?token=${CANARY}`, { headers: { "x-api-key": key.secret ?? "" } });
  expect(ok.status).toBe(200);
  expect((await fetch(`${url}/agents/echo/x`, { headers: { authorization: `Bearer ${CANARY}` } })).status).toBe(401);
  expect((await fetch(`${url}/agents/echo/x`, { headers: { "x-api-key": CANARY } })).status).toBe(401);
  expect((await fetch(`${url}/healthz?api_key=${CANARY}&secret=${CANARY}`)).status).toBe(200);
  expect((await fetch(`${url}/agents/echo/${CANARY}`)).status).toBe(401);
  return { keyId: key.key?.id ?? "", secret: key.secret ?? "" };
}

/** SIGTERM, then everything it wrote: the logger flushes before the process exits. */
async function stop(run: Run): Promise<string> {
  run.child.kill("SIGTERM");
  expect(await run.exited).toBe(0);
  return run.stderr();
}

describe("keyward serve logs", () => {
  it("JSON with level names, and one access line per request when KEYWARD_ACCESS_LOG=1, with no secret in it", async () => {
    const run = await serve({ KEYWARD_LOG_FORMAT: "json", KEYWARD_LOG_LEVEL: "info", KEYWARD_ACCESS_LOG: "1" });
    const { keyId, secret } = await traffic(run.url);
    const stderr = await stop(run);
    const lines = stderr
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const l of lines) expect(["info", "warn", "error"]).toContain(l.level);
    const access = lines.filter((l) => l.msg === "request");
    // Each worker writes its own lines (one per core by default): the order between workers is
    // the kernel's, so lines are compared in a fixed order.
    const inOrder = (rows: unknown[][]) => rows.map((r) => JSON.stringify(r)).sort();
    expect(inOrder(access.map((l) => [l.method, l.path, l.status]))).toEqual(
      inOrder([
        ["POST", "/admin/v1/agents", 201],
        ["POST", "/admin/v1/consumers", 201],
        ["POST", "/admin/v1/keys", 201],
        ["GET", "/agents/echo/hello", 200],
        ["GET", "/agents/echo/x", 401],
        ["GET", "/agents/echo/x", 401],
        ["GET", "/healthz", 200],
        // A key-shaped path segment is cut to its prefix, as audit records show it.
        ["GET", "/agents/echo/kwk_logcanar…", 401],
      ]),
    );
    expect(keyId).toMatch(/^key_/);
    const allowed = access.find((l) => l.path === "/agents/echo/hello");
    expect(allowed).toMatchObject({ level: "info", key_id: keyId, request_id: expect.any(String) });
    for (const l of access) expect(typeof l.ms).toBe("number");
    const all = stderr + run.stdout();
    for (const s of [CANARY, CANARY.slice(4), secret, ADMIN]) expect(all).not.toContain(s);
    expect(run.stdout()).toMatch(/^keyward listening on http:\/\/127\.0\.0\.1:\d+\n$/);
  });

  it("writes no access lines by default", async () => {
    const run = await serve({ KEYWARD_LOG_FORMAT: "json", KEYWARD_LOG_LEVEL: "info" });
    await traffic(run.url);
    const lines = (await stop(run))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.msg)).toContain("keyward started");
    expect(lines.filter((l) => l.msg === "request")).toEqual([]);
  });

  it("pretty: one readable line per entry, the CLI's own lines unchanged on stdout", async () => {
    const run = await serve({ KEYWARD_LOG_FORMAT: "pretty", KEYWARD_LOG_LEVEL: "info", KEYWARD_ACCESS_LOG: "true" });
    const { secret } = await traffic(run.url);
    const stderr = await stop(run);
    for (const line of stderr.trim().split("\n")) expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3} (INFO |WARN |ERROR) \S/);
    expect(stderr).toMatch(
      / INFO {2}request (worker=\d+ )?request_id=\S+ method=GET path=\/healthz status=200 ms=[\d.]+\n/,
    );
    expect(stderr).not.toContain(CANARY.slice(4));
    expect(stderr).not.toContain(secret);
    expect(run.stdout()).toMatch(/^keyward listening on http:\/\/127\.0\.0\.1:\d+\n$/);
  });
});
