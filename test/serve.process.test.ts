import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type ApiErrorBody, readJson } from "../packages/server/test-support/wire.js";

// These tests start `keyward serve` the way a user does: the built bin, as a child process.
const BIN = join(import.meta.dirname, "../packages/server/dist/cli/main.js");
const ADMIN = "process-test-admin-token-0123456789abcdef";
const MASTER = Buffer.alloc(32, 9).toString("base64");

interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

const running: Proc[] = [];
const dirs: string[] = [];

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "keyward-proc-"));
  dirs.push(d);
  return d;
}

function serve(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [BIN, "serve", ...args], {
    env: { PATH: process.env.PATH ?? "", KEYWARD_LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (d) => (out += d));
  child.stderr?.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const p = { child, stdout: () => out, stderr: () => err, exited };
  running.push(p);
  return p;
}

/** Waits for the `listening on` line (an event, not a sleep) and returns the URL. */
async function listening(p: Proc): Promise<string> {
  for (;;) {
    const m = /listening on (http:\/\/\S+)/.exec(p.stdout());
    if (m) return m[1] as string;
    const code = await Promise.race([
      p.exited,
      new Promise<"more">((resolve) => p.child.stdout?.once("data", () => resolve("more"))),
    ]);
    if (code !== "more") throw new Error(`keyward exited (${code}) before listening: ${p.stderr()}`);
  }
}

afterEach(async () => {
  for (const p of running.splice(0)) {
    if (p.child.exitCode === null) {
      p.child.kill("SIGKILL");
      await p.exited;
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("keyward serve, as a process", () => {
  it("prints a generated admin token once, listens, and exits 0 on SIGTERM", async () => {
    const dir = tempDir();
    const first = serve(["--port", "0", "--data-dir", dir]);
    const url = await listening(first);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const token = /admin token: (kwa_[0-9A-Za-z]{38})/.exec(first.stdout())?.[1];
    expect(token).toBeDefined();
    expect(first.stderr()).toContain("master.key");
    expect(statSync(join(dir, "master.key")).mode & 0o077).toBe(0);
    const agents = await fetch(`${url}/admin/v1/agents`, { headers: { authorization: `Bearer ${token}` } });
    expect(agents.status).toBe(200);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);

    const second = serve(["--port", "0", "--data-dir", dir]);
    const url2 = await listening(second);
    expect(second.stdout()).not.toContain("admin token");
    expect((await fetch(`${url2}/admin/v1/agents`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(
      200,
    );
    second.child.kill("SIGINT");
    expect(await second.exited).toBe(0);
  });

  it("refuses a second server on the same SQLite data dir, and takes over a stale lock", async () => {
    const dir = tempDir();
    const first = serve(["--port", "0", "--data-dir", dir]);
    await listening(first);
    const second = serve(["--port", "0", "--data-dir", dir]);
    expect(await second.exited).toBe(1);
    expect(second.stderr()).toContain("SQLite supports one server process");
    first.child.kill("SIGKILL"); // dies without releasing its lock
    await first.exited;
    const third = serve(["--port", "0", "--data-dir", dir]);
    await listening(third);
    third.child.kill("SIGTERM");
    expect(await third.exited).toBe(0);
  });

  it("admin-token reset replaces the admin token, taking effect on the running server", async () => {
    const dir = tempDir();
    const server = serve(["--port", "0", "--data-dir", dir]);
    const url = await listening(server);
    const old = /admin token: (kwa_\w+)/.exec(server.stdout())?.[1];
    const reset = spawnSync(process.execPath, [BIN, "admin-token", "reset", "--data-dir", dir], {
      env: { PATH: process.env.PATH ?? "" },
      encoding: "utf8",
    });
    expect(reset.status).toBe(0);
    const fresh = /admin token: (kwa_\w+)/.exec(reset.stdout)?.[1];
    expect(fresh).toBeDefined();
    expect(fresh).not.toBe(old);
    const agents = (token: string | undefined) =>
      fetch(`${url}/admin/v1/agents`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    expect(await agents(old)).toBe(401);
    expect(await agents(fresh)).toBe(200);
    const audit = await fetch(`${url}/admin/v1/audit?action=admin_token.reset`, {
      headers: { authorization: `Bearer ${fresh}` },
    }).then((r) => readJson<{ events: unknown[] }>(r));
    expect(audit.events).toHaveLength(1);
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
  });

  it.each([
    [["--port", "abc"], {}, "--port"],
    [["--port", "70000"], {}, "--port"],
    [["--bogus"], {}, "bogus"],
    [[], { KEYWARD_PORT: "-1" }, "KEYWARD_PORT"],
    [[], { KEYWARD_ADMIN_TOKEN: "short-secret-canary" }, "KEYWARD_ADMIN_TOKEN"],
    [[], { KEYWARD_DATABASE_URL: "mysql://x" }, "KEYWARD_DATABASE_URL"],
    [[], { KEYWARD_MASTER_KEY: "bm90LTMyLWJ5dGVz" }, "KEYWARD_MASTER_KEY"],
    [[], { KEYWARD_TRUSTED_PROXIES: "10.0.0.0/99" }, "KEYWARD_TRUSTED_PROXIES"],
    [[], { KEYWARD_DATABASE_URL: "postgres://127.0.0.1:1/none" }, "KEYWARD_MASTER_KEY"],
    [["--config", "/nonexistent/keyward.yaml"], {}, "--config"],
  ])("refuses bad configuration %j %j with one line naming %s", async (args, env, names) => {
    const port = "KEYWARD_PORT" in env ? [] : ["--port", "0"];
    const p = serve(["--data-dir", tempDir(), ...port, ...args], env as Record<string, string>);
    expect(await p.exited).not.toBe(0);
    const lines = p.stderr().trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(names);
    expect(p.stderr()).not.toContain("short-secret-canary");
    expect(p.stdout()).not.toContain("listening");
  });

  it("drains in-flight requests on SIGTERM and keeps quota counts across restarts", async () => {
    let release: (() => void) | undefined;
    const held = new Promise<void>((r) => (release = r));
    let arrived: () => void = () => {};
    const arrival = new Promise<void>((r) => (arrived = r));
    const upstream = http.createServer(async (req, res) => {
      if (req.url === "/slow") {
        arrived();
        await held;
      }
      res.end("done");
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const dir = tempDir();
    const env = { KEYWARD_ADMIN_TOKEN: ADMIN, KEYWARD_MASTER_KEY: MASTER };
    try {
      const first = serve(["--port", "0", "--data-dir", dir], env);
      const url = await listening(first);
      const admin = <T = unknown>(path: string, body: unknown) =>
        fetch(`${url}/admin/v1${path}`, {
          method: "POST",
          headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
          body: JSON.stringify(body),
        }).then((r) => readJson<T>(r));
      await admin("/agents", { name: "slow", upstream: upstreamUrl });
      await admin("/consumers", { name: "c" });
      const created = await admin<{ secret: string }>("/keys", {
        owner: "consumer:c",
        scopes: ["agent:slow"],
        quota: { limit: 4, period: "total" },
      });
      const headers = { "x-api-key": created.secret };
      expect((await fetch(`${url}/agents/slow/fast`, { headers })).status).toBe(200);
      const inFlight = fetch(`${url}/agents/slow/slow`, { headers });
      await arrival;
      first.child.kill("SIGTERM");
      release?.();
      const res = await inFlight;
      expect(res.status).toBe(200);
      expect(await res.text()).toBe("done");
      expect(await first.exited).toBe(0);

      const second = serve(["--port", "0", "--data-dir", dir], env);
      const url2 = await listening(second);
      // Two of four used before the restart: two more pass, then the quota holds.
      expect((await fetch(`${url2}/agents/slow/fast`, { headers })).status).toBe(200);
      expect((await fetch(`${url2}/agents/slow/fast`, { headers })).status).toBe(200);
      const over = await fetch(`${url2}/agents/slow/fast`, { headers });
      expect(over.status).toBe(429);
      expect((await readJson<ApiErrorBody>(over)).error.code).toBe("quota_exceeded");
      second.child.kill("SIGTERM");
      expect(await second.exited).toBe(0);
    } finally {
      upstream.closeAllConnections();
      upstream.close();
    }
  });
});
