import http from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../packages/server/test-support/server.js";

/**
 * The cost budget (issue 18): for every endpoint reachable without credentials and every value a
 * caller controls, the worst input costs at most 50 ms of event-loop time.
 *
 * The server runs in this process; each worst-case request is sent alone, from buffers built
 * beforehand, and the longest event-loop stall while it is handled is read from
 * monitorEventLoopDelay. A loaded 2-core machine stalls by itself (preemption, GC), so each input
 * is tried up to three times and its cheapest run counts, and the budget is 50 ms above the worst
 * stall of trivial requests measured in the same run. The table of costs is printed.
 */

const BUDGET_MS = 50;
const MIB = 1024 * 1024;
/** Node's default --max-http-header-size is 16 KiB for the request line and all headers. */
const HEADER_ROOM = 15 * 1024;

interface Input {
  name: string;
  method?: string;
  /** Appended to the endpoint's path (a long path or query). */
  suffix?: string;
  headers?: Record<string, string>;
  body?: Buffer;
}

const repeat = (unit: string, bytes: number) => unit.repeat(Math.floor(bytes / unit.length));

const JSON_HEADERS = { "content-type": "application/json" };
const FORM_HEADERS = { "content-type": "application/x-www-form-urlencoded" };

/** Built once: the client's own work must not be counted as the server's. */
const INPUTS: Input[] = [
  { name: "trivial" },
  { name: "json [[[[ 1 MiB", method: "POST", headers: JSON_HEADERS, body: Buffer.from(repeat("[", MIB)) },
  {
    name: 'json {"a":{"a": 1 MiB',
    method: "POST",
    headers: JSON_HEADERS,
    body: Buffer.from(repeat('{"a":', MIB - 16)),
  },
  {
    name: "json closed nesting 5k",
    method: "POST",
    headers: JSON_HEADERS,
    body: Buffer.from(`${"[".repeat(5000)}${"]".repeat(5000)}`),
  },
  {
    name: "json long string 1 MiB",
    method: "POST",
    headers: JSON_HEADERS,
    body: Buffer.from(`{"grant_type":"${repeat("a", MIB - 64)}"}`),
  },
  {
    name: "json many keys 1 MiB",
    method: "POST",
    headers: JSON_HEADERS,
    body: Buffer.from(`{${Array.from({ length: 60_000 }, (_, i) => `"k${i}":1`).join(",")}}`),
  },
  { name: "form many fields 1 MiB", method: "POST", headers: FORM_HEADERS, body: Buffer.from(repeat("a=1&", MIB)) },
  {
    name: "form percent-escapes 1 MiB",
    method: "POST",
    headers: FORM_HEADERS,
    body: Buffer.from(`grant_type=${repeat("%25", MIB - 32)}`),
  },
  { name: "form bad escapes 1 MiB", method: "POST", headers: FORM_HEADERS, body: Buffer.from(repeat("%E0%A4%", MIB)) },
  { name: "body over the limit", method: "POST", headers: JSON_HEADERS, body: Buffer.alloc(MIB + 1, 0x5b) },
  { name: "query many params", suffix: `?${repeat("a=1&", HEADER_ROOM - 200)}` },
  { name: "query escapes", suffix: `?since=${repeat("%25", HEADER_ROOM - 200)}` },
  { name: "path long", suffix: `/${repeat("a/", HEADER_ROOM - 200)}` },
  { name: "path dot-escapes", suffix: `/${repeat("%2e%2e%2f", HEADER_ROOM - 200)}` },
  { name: "path overlong utf8", suffix: `/${repeat("%C0%AE%C0%AF", HEADER_ROOM - 200)}` },
  {
    name: "many headers",
    headers: Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`x-h${i}`, "v"])),
  },
  { name: "bearer long", headers: { authorization: `Bearer ${repeat("A", HEADER_ROOM - 200)}` } },
  {
    name: "bearer jwt-shaped",
    headers: { authorization: `Bearer eyJ${repeat("a", 7000)}.eyJ${repeat("b", 7000)}.${repeat("c", 600)}` },
  },
  { name: "basic long", headers: { authorization: `Basic ${repeat("QUFB", HEADER_ROOM - 200)}` } },
  { name: "api key long", headers: { "x-api-key": `kwk_${repeat("A", HEADER_ROOM - 200)}` } },
  { name: "x-forwarded-for long", headers: { "x-forwarded-for": repeat("1.2.3.4, ", HEADER_ROOM - 200) } },
  {
    name: "forwarded uri long",
    headers: { "x-forwarded-uri": `/agents/echo/${repeat("%2e%2e/", HEADER_ROOM - 200)}` },
  },
  { name: "last-event-id long", headers: { "last-event-id": repeat("9", HEADER_ROOM - 200) } },
  { name: "if-none-match long", headers: { "if-none-match": repeat('"x",', HEADER_ROOM - 200) } },
];

const ENDPOINTS = [
  "/healthz",
  "/readyz",
  "/metrics",
  "/.well-known/jwks.json",
  "/.well-known/openid-configuration",
  "/.well-known/oauth-authorization-server",
  "/v1/verify",
  "/agents/echo",
  "/egress/stripe",
  "/mcp/files",
  "/oauth/token",
  "/oauth/introspect",
  "/oauth/revoke",
  "/oauth/register",
  "/oauth/authorize",
  "/oauth/callback",
  "/oauth/authorize/consent",
  "/v1/auth/token",
  "/v1/credentials",
  "/v1/credentials/events",
  "/v1/tools/credentials",
  "/v1/users/me/credentials",
  "/admin/v1/keys",
  "/admin/v1/audit",
];

/**
 * Inputs known to be over budget, reported rather than failed. Empty: the OAuth endpoints were
 * (120–340 ms for 1 MiB of `[[[[` or 60k keys) until their bodies were capped at 64 KiB
 * (tokens/oauth-form.ts). Keep it empty.
 */
const knownOver = (_endpoint: string, _input: Input) => false;

let kw: TestServer;
const histogram = monitorEventLoopDelay({ resolution: 1 });

function send(input: Input, path: string): Promise<number> {
  const url = new URL(kw.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        method: input.method ?? "GET",
        path: path + (input.suffix ?? ""),
        headers: { ...input.headers, ...(input.body ? { "content-length": String(input.body.length) } : {}) },
        agent: false,
        timeout: 30_000,
      },
      (res) => {
        // An event stream that opened (it cannot without a credential) would never end.
        if (res.headers["content-type"]?.startsWith("text/event-stream")) {
          req.destroy();
          resolve(res.statusCode ?? 0);
          return;
        }
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", reject);
      },
    );
    // The server may answer (413, 401) and close before the whole body is sent.
    req.on("error", (err: NodeJS.ErrnoException) =>
      err.code === "ECONNRESET" || err.code === "EPIPE" ? resolve(0) : reject(err),
    );
    req.end(input.body);
  });
}

/** The longest event-loop stall (ms) while one request is handled, cheapest of `tries` runs. */
async function cost(input: Input, path: string, tries: number): Promise<{ ms: number; status: number }> {
  let best = Number.POSITIVE_INFINITY;
  let status = 0;
  for (let i = 0; i < tries; i++) {
    histogram.reset();
    status = await send(input, path);
    // Anything the request left queued on the loop (audit writes, socket close) counts too.
    await new Promise((r) => setTimeout(r, 5));
    best = Math.min(best, histogram.max / 1e6);
    if (best <= BUDGET_MS / 2) break;
  }
  return { ms: best, status };
}

beforeAll(async () => {
  kw = await startTestServer({ KEYWARD_TRUSTED_PROXIES: "127.0.0.1/32" });
  await kw.admin("POST", "/agents", { name: "echo", upstream: "http://127.0.0.1:9" });
  histogram.enable();
});
afterAll(async () => {
  histogram.disable();
  await kw?.close();
});

describe("cost budget: the worst input an outsider can send", () => {
  it(`costs at most ${BUDGET_MS} ms of event-loop time on every endpoint reachable without credentials`, async () => {
    // The machine's own stalls: trivial requests, in this run.
    let baseline = 0;
    for (let i = 0; i < 30; i++) baseline = Math.max(baseline, (await cost(INPUTS[0] as Input, "/healthz", 1)).ms);
    const allowed = BUDGET_MS + baseline;

    const table: Array<{ endpoint: string; worst: string; ms: number; status: number }> = [];
    const over: string[] = [];
    const known: string[] = [];
    for (const endpoint of ENDPOINTS) {
      let worst = { input: "", ms: 0, status: 0 };
      for (const input of INPUTS) {
        const c = await cost(input, endpoint, 3);
        if (c.ms > worst.ms) worst = { input: input.name, ...c };
        if (c.ms > allowed) {
          const line = `${endpoint} ${input.name}: ${c.ms.toFixed(1)} ms (status ${c.status})`;
          (knownOver(endpoint, input) ? known : over).push(line);
        }
        // Never a 500: every refusal of an outsider's input is a 4xx.
        expect(c.status, `${endpoint} ${input.name}`).not.toBeGreaterThanOrEqual(500);
      }
      table.push({ endpoint, worst: worst.input, ms: Math.round(worst.ms * 10) / 10, status: worst.status });
    }
    console.log(`cost budget: baseline stall ${baseline.toFixed(1)} ms, allowed ${allowed.toFixed(1)} ms`);
    console.table(table);
    if (known.length > 0) console.log(`known over budget (oauth-form.ts, reported):\n  ${known.join("\n  ")}`);
    expect(over).toEqual([]);
    // The server is still answering at once.
    expect((await fetch(`${kw.url}/healthz`)).status).toBe(200);
  }, 600_000);
});
