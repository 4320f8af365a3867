import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { type AddressInfo, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";

/**
 * Forward-auth as users run it: a real nginx with `auth_request` in front of an agent, Keyward
 * answering `/v1/verify`. Skipped (with a printed reason) where nginx is not installed, except in
 * CI, where a missing nginx is a failure rather than a silent gap.
 */

function findNginx(): string | undefined {
  for (const bin of ["nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"]) {
    if (spawnSync(bin, ["-v"], { stdio: "ignore" }).status === 0) return bin;
  }
  return undefined;
}

const NGINX = findNginx();
const mustRun = Boolean(process.env.CI);
if (!NGINX && !mustRun)
  console.warn("forward-auth.nginx.test: skipped, nginx is not installed (apt-get install nginx)");

/** The docs' `location /agents/` block: ask Keyward, then forward with its JWT. */
function agentLocation(prefix: string, upstream: string): string {
  return `
    location ${prefix} {
      auth_request /_kw_verify;
      auth_request_set $kw_auth $upstream_http_authorization;
      auth_request_set $kw_code $upstream_http_x_keyward_code;
      auth_request_set $kw_retry $upstream_http_retry_after;
      auth_request_set $kw_request_id $upstream_http_x_request_id;
      error_page 500 = @kw_denied;
      proxy_set_header Authorization $kw_auth;
      proxy_set_header X-Api-Key "";
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://${upstream};
    }`;
}

/**
 * nginx's auth_request turns any status but 2xx/401/403 into 500: X-Keyward-Code restores 429 and
 * 400. A second agent, payroll, has its own location (as when agents live on different hosts):
 * nginx picks it on the normalized path, Keyward judges the raw URI, and the two must agree.
 */
function nginxConfig(dir: string, port: number, keywardPort: number, upstreamPorts: Ports): string {
  return `
daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
${process.getuid?.() === 0 ? "user root;" : ""}
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;

  upstream keyward { server 127.0.0.1:${keywardPort}; keepalive 8; }
  upstream agent { server 127.0.0.1:${upstreamPorts.billing}; keepalive 8; }
  upstream payroll { server 127.0.0.1:${upstreamPorts.payroll}; keepalive 8; }

  server {
    listen 127.0.0.1:${port};

${agentLocation("/agents/", "agent")}
${agentLocation("/agents/payroll/", "payroll")}
    location = /_kw_verify {
      internal;
      proxy_pass http://keyward/v1/verify;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }

    location @kw_denied {
      default_type application/json;
      add_header Retry-After $kw_retry always;
      if ($kw_code = "rate_limited") {
        return 429 '{"error":{"code":"rate_limited","message":"rate limit exceeded","request_id":"$kw_request_id"}}';
      }
      if ($kw_code = "invalid_request") {
        return 400 '{"error":{"code":"invalid_request","message":"the request URI was refused","request_id":"$kw_request_id"}}';
      }
      if ($kw_code = "quota_exceeded") {
        return 429 '{"error":{"code":"quota_exceeded","message":"quota exceeded","request_id":"$kw_request_id"}}';
      }
      return 500 '{"error":{"code":"internal_error","message":"authorization failed","request_id":"$kw_request_id"}}';
    }
  }
}
`;
}

interface Ports {
  billing: number;
  payroll: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: "127.0.0.1" });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

/** Starts nginx and resolves once its port accepts connections; rejects with its stderr if it exits. */
async function startNginx(bin: string, dir: string, conf: string, port: number): Promise<ChildProcess> {
  const child = spawn(bin, ["-p", dir, "-e", join(dir, "error.log"), "-c", conf], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  let exited: string | undefined;
  child.once("exit", (code, signal) => {
    exited = `nginx exited (${code ?? signal}): ${stderr.trim()}`;
  });
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (exited) throw new Error(exited);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`nginx did not listen on ${port} within 10 s: ${stderr.trim()}`);
    }
    await new Promise((r) => setImmediate(r));
  }
  return child;
}

/** An agent that answers with what it saw, and remembers each path it was asked for. */
async function startAgent(): Promise<{ server: Server; port: number; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(req.url ?? "");
    const auth = req.headers.authorization ?? "";
    const body = JSON.stringify({
      method: req.method,
      path: req.url,
      saw_jwt: auth.startsWith("Bearer ey"),
      saw_key: JSON.stringify(req.headers).includes("kwk_"),
    });
    res.writeHead(200, { "content-type": "application/json" }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

/** node:http, because fetch normalizes `..` and `%2e%2e` before sending: an attacker does not. */
function rawGet(url: string, path: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url);
    const req = request({ hostname, port, path, headers, agent: false }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** The error code of Keyward's JSON body, or "nginx" for nginx's own HTML error page. */
function errorCode(text: string): string {
  try {
    return JSON.parse(text).error.code;
  } catch {
    return "nginx";
  }
}

describe.skipIf(!NGINX && !mustRun)("forward-auth behind nginx auth_request", () => {
  let billing: Awaited<ReturnType<typeof startAgent>>;
  let payroll: Awaited<ReturnType<typeof startAgent>>;
  let kw: TestServer;
  let nginx: ChildProcess | undefined;
  let dir: string;
  let base: string;

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, { headers });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
  };

  const newKey = async (body: Record<string, unknown>): Promise<{ id: string; secret: string }> => {
    const res = await kw.admin("POST", "/keys", { owner: "consumer:shop", ...body });
    expect(res.status).toBe(201);
    return { id: res.body.key.id, secret: res.body.secret };
  };

  beforeAll(async () => {
    if (!NGINX) throw new Error("nginx is required when CI is set (apt-get install nginx)");
    billing = await startAgent();
    payroll = await startAgent();

    kw = await startTestServer();
    for (const [name, agent] of [
      ["billing", billing],
      ["payroll", payroll],
    ] as const) {
      const res = await kw.admin("POST", "/agents", { name, upstream: `http://127.0.0.1:${agent.port}` });
      expect(res.status).toBe(201);
    }
    expect((await kw.admin("POST", "/consumers", { name: "shop" })).status).toBe(201);

    dir = mkdtempSync(join(tmpdir(), "keyward-nginx-"));
    const conf = join(dir, "nginx.conf");
    const keywardPort = Number(new URL(kw.url).port);
    const upstreamPorts = { billing: billing.port, payroll: payroll.port };
    // A free port can be taken between our probe and nginx's bind: try a few.
    for (let attempt = 0; !nginx; attempt++) {
      const port = await freePort();
      writeFileSync(conf, nginxConfig(dir, port, keywardPort, upstreamPorts));
      try {
        nginx = await startNginx(NGINX, dir, conf, port);
        base = `http://127.0.0.1:${port}`;
      } catch (err) {
        if (attempt >= 2 || !/in use/i.test(String(err))) throw err;
      }
    }
  });

  afterAll(async () => {
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((r) => nginx?.once("exit", r));
      nginx.kill("SIGQUIT");
      await exited;
    }
    await kw?.close();
    for (const agent of [billing, payroll]) await new Promise((r) => (agent ? agent.server.close(r) : r(undefined)));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("lets a valid key through and the agent sees Keyward's JWT, never the key", async () => {
    const key = await newKey({ scopes: ["agent:billing"] });
    const res = await get("/agents/billing/invoices?month=5", { authorization: `Bearer ${key.secret}` });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({
      method: "GET",
      path: "/agents/billing/invoices?month=5",
      saw_jwt: true,
      saw_key: false,
    });

    const viaHeader = await get("/agents/billing/x", { "x-api-key": key.secret });
    expect(viaHeader.status).toBe(200);
    expect(viaHeader.json()).toMatchObject({ saw_jwt: true, saw_key: false });
  });

  it("answers 401 without a credential, and the agent is not called", async () => {
    const res = await get("/agents/billing/invoices");
    expect(res.status).toBe(401);
    expect(res.text).not.toContain("saw_jwt");
  });

  it("answers 401 for a revoked key", async () => {
    const key = await newKey({ scopes: ["agent:billing"] });
    expect((await get("/agents/billing/a", { authorization: `Bearer ${key.secret}` })).status).toBe(200);
    expect((await kw.admin("POST", `/keys/${key.id}/revoke`)).status).toBe(200);
    const res = await get("/agents/billing/a", { authorization: `Bearer ${key.secret}` });
    expect(res.status).toBe(401);
    expect(res.text).not.toContain("saw_jwt");
  });

  it("answers 403 for a key without the agent's scope", async () => {
    const key = await newKey({ scopes: ["agent:other", "read:invoices"] });
    const res = await get("/agents/billing/a", { authorization: `Bearer ${key.secret}` });
    expect(res.status).toBe(403);
    expect(res.text).not.toContain("saw_jwt");
  });

  it("maps a rate-limited caller to 429, not nginx's 500", async () => {
    const key = await newKey({ scopes: ["agent:billing"], rate_limit: { limit: 2, window_s: 3600 } });
    const auth = { authorization: `Bearer ${key.secret}` };
    expect((await get("/agents/billing/a", auth)).status).toBe(200);
    expect((await get("/agents/billing/a", auth)).status).toBe(200);
    const third = await get("/agents/billing/a", auth);
    expect(third.status).toBe(429);
    expect(third.json().error.code).toBe("rate_limited");
    expect(Number(third.headers.get("retry-after"))).toBeGreaterThan(0);
  });
  it("refuses URIs that nginx routes to another agent than the one Keyward would authorize", async () => {
    const key = await newKey({ scopes: ["agent:billing"] });
    const auth = { authorization: `Bearer ${key.secret}` };
    // The setup works: this key reaches billing, and payroll refuses it.
    expect((await rawGet(base, "/agents/billing/x", auth)).status).toBe(200);
    expect((await rawGet(base, "/agents/payroll/x", auth)).status).toBe(403);
    const before = { billing: billing.seen.length, payroll: payroll.seen.length };
    const attacks = [
      "/agents/billing/../payroll/salaries",
      "/agents/billing/%2e%2e/payroll/salaries",
      "/agents/billing/%2E%2E/payroll/salaries",
      "/agents/billing/.%2e/payroll/salaries",
      "/agents/billing/./../payroll/salaries",
      "/agents/billing%2f..%2fpayroll/salaries",
      "/agents/billing%2F%2E%2E%2Fpayroll/salaries",
      "/agents/billing/..;/payroll/salaries",
      "/agents/billing/%252e%252e/payroll/salaries",
      "/agents/billing/%c0%ae%c0%ae/payroll/salaries",
      "/agents/billing/%5c..%5cpayroll/salaries",
      "/agents/billing//../payroll/salaries",
      "/agents/%62illing/../payroll/salaries",
    ];
    const answers = [];
    for (const uri of attacks) {
      const res = await rawGet(base, uri, auth);
      answers.push({ uri, status: res.status, code: res.status === 200 ? "forwarded" : errorCode(res.text) });
    }
    expect(answers).toEqual(attacks.map((uri) => ({ uri, status: 400, code: "invalid_request" })));
    expect({ billing: billing.seen.length, payroll: payroll.seen.length }).toEqual(before);
  });

  it("does not let a caller's own X-Forwarded-Uri name another agent than nginx's X-Original-URI", async () => {
    const key = await newKey({ scopes: ["agent:billing"] });
    const before = payroll.seen.length;
    const res = await rawGet(base, "/agents/payroll/salaries", {
      authorization: `Bearer ${key.secret}`,
      "x-forwarded-uri": "/agents/billing/salaries",
    });
    expect(res.status).toBe(400);
    expect(payroll.seen.length).toBe(before);
  });

  it("still forwards ordinary paths with @, :, ;, %20 and encoded slashes", async () => {
    const key = await newKey({ scopes: ["agent:billing"] });
    const path = "/agents/billing/users/@me/a:b;v=1/x%20y/group%2Fproject/a.b..c/";
    const res = await rawGet(base, path, { authorization: `Bearer ${key.secret}` });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text).path).toBe(path);
  });
});
