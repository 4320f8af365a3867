// MCP with an OAuth token (issue 16): what an MCP client's token costs on a `tools/call` over
// today's Keyward token, in the same run, same Keyward, same user, same warm upstream process.
//
//   today: a user's access token from /v1/auth/token (aud = the issuer, scope mcp:echo, resting on
//          the user's key)
//   OAuth: the shape an MCP client gets from the authorization flow (aud = <issuer>/mcp/echo,
//          RFC 8707; client_id oac_…, resting on no key; scope mcp:echo:echo, per tool), signed
//          with Keyward's own signing key read from its store, as a second replica would
//
// 1. Latency: one MCP session per token, the two taking turns call by call (which goes first
//    alternates), so both see the same machine at the same moments; percentiles over all rounds.
//    Target: added p50 ≤ 0.1 ms. (Each round's p50 difference and the p99 difference are reported.)
// 2. Keyward CPU per call with BENCH_MCP_CONCURRENCY calls in flight (Keyward and the user's
//    stdio process it started: the upstream's share is the same for both tokens).
// 3. (info) In process: the checks that differ (audience against the resource, the tool access
//    from the scopes, the call's tool judged), ns per call, from the built modules.
//
// Env: BENCH_MCP_CALLS (3000) per token per latency round, BENCH_MCP_ROUNDS (4), BENCH_MCP_CONCURRENCY (16),
// BENCH_MCP_SECONDS (1.5) per CPU run, BENCH_MCP_CPU_RUNS (8) per token, alternating; the figure is
// the median of the paired differences (run i of one token against run i of the other).
// BENCH_MCP_CONTROL=1 gives the second client another of today's tokens: the same figures then show
// the noise floor. Run after `npm run build`.
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { cpuSeconds } from "./lib/cpu.mjs";
import { envNumber } from "./lib/env.mjs";
import { startKeyward } from "./lib/keyward.mjs";
import { removeLater, stopAll } from "./lib/procs.mjs";
import { summarize } from "./lib/sequential.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const UPSTREAM = join(ROOT, "bench/mcp-upstream.mjs");
const DIST = join(ROOT, "packages/server/dist");
const CALLS = envNumber("BENCH_MCP_CALLS", 3000, { integer: true });
const ROUNDS = envNumber("BENCH_MCP_ROUNDS", 4, { integer: true });
const CONCURRENCY = envNumber("BENCH_MCP_CONCURRENCY", 16, { integer: true });
const SECONDS = envNumber("BENCH_MCP_SECONDS", 1.5);
const CPU_RUNS = envNumber("BENCH_MCP_CPU_RUNS", 8, { integer: true });
const log = (msg) => process.stderr.write(`bench mcp-oauth: ${msg}\n`);
const dist = (path) => import(pathToFileURL(join(DIST, path)).href);

/** BENCH_MCP_CONTROL=1: both clients hold today's tokens, so the differences show the noise floor. */
const CONTROL = process.env.BENCH_MCP_CONTROL === "1";
const ORDER = ["today", "oauth"];
const LABELS = {
  today: "today's token (aud = issuer, mcp:echo)",
  oauth: CONTROL
    ? "control: another of today's tokens"
    : "OAuth token (aud = /mcp/echo resource, mcp:echo:echo, oac_ client)",
};

/** One echo call; throws unless the tool's own answer came back (a refusal is not a fast call). */
async function echo(client, text) {
  const r = await client.callTool({ name: "echo", arguments: { text } });
  if (r.isError || r.content?.[0]?.text !== text) throw new Error(`echo answered ${JSON.stringify(r).slice(0, 300)}`);
}

/**
 * Paired latency: the two clients take turns call by call (which goes first alternates), so both
 * see the same machine at the same moments; one sample set per client.
 */
async function pairedLatency(clients, n) {
  for (let i = 0; i < 300; i++) for (const id of ORDER) await echo(clients[id], `warm ${i}`);
  const samples = Object.fromEntries(ORDER.map((id) => [id, []]));
  for (let i = 0; i < n; i++) {
    for (const id of i % 2 === 0 ? ORDER : [...ORDER].reverse()) {
      const t = process.hrtime.bigint();
      await echo(clients[id], `call ${i}`);
      samples[id].push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  }
  return samples;
}

/** Keyward's CPU µs per call (with its children: the user's stdio upstream) at CONCURRENCY in flight. */
async function cpuPerCall(client, pid) {
  const cpu0 = cpuSeconds(pid) ?? Number.NaN;
  let calls = 0;
  const end = performance.now() + SECONDS * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, w) => {
      while (performance.now() < end) {
        await echo(client, `w${w} ${calls}`);
        calls++;
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  return { rps: calls / elapsed, us: (((cpuSeconds(pid) ?? Number.NaN) - cpu0) * 1e6) / calls };
}

/** Signs a token with the running server's active key: its store opened with its master key. */
async function minter(dataDir, masterKey, issuer) {
  const { openStore } = await dist("store/open-store.js");
  const { createKeyring } = await dist("crypto/keyring.js");
  const { createSigningKeys } = await dist("crypto/signing-keys.js");
  const db = await openStore(undefined, dataDir);
  try {
    const keys = createSigningKeys({
      db,
      keyring: createKeyring({ active: Buffer.from(masterKey, "base64") }),
      clock: { now: () => Date.now() },
    });
    await keys.init();
    return (claims) => {
      const now = Math.floor(Date.now() / 1000);
      return keys.sign({
        iss: issuer,
        iat: now,
        exp: now + 3600,
        jti: `bench-${randomBytes(8).toString("hex")}`,
        ...claims,
      });
    };
  } finally {
    await db.close();
  }
}

/**
 * ns per call of the checks that differ, in process: the audience against the place, the tool
 * access from the scopes and the call's tool judged (tools/list's filter runs on lists only).
 */
async function inProcessChecks(issuer) {
  const { audienceAccepted } = await dist("auth/audience.js");
  const { toolAccess } = await dist("mcp/mcp-tool-access.js");
  const place = { kind: "mcp", server: "echo" };
  const cases = {
    today: { aud: [issuer], scopes: new Set(["mcp:echo"]) },
    oauth: { aud: [`${issuer}/mcp/echo`], scopes: new Set(["mcp:echo:echo"]) },
  };
  const out = {};
  for (const [id, c] of Object.entries(cases)) {
    const n = 2_000_000;
    for (let round = 0; round < 2; round++) {
      const t = process.hrtime.bigint();
      for (let i = 0; i < n; i++) {
        if (!audienceAccepted(c.aud, place, issuer)) throw new Error("refused");
        if (toolAccess("echo", c.scopes).refusal("echo") !== undefined) throw new Error("refused");
      }
      out[id] = Number(process.hrtime.bigint() - t) / n;
    }
  }
  return out;
}

const tokenRequest = (apiKey) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ api_key: apiKey }),
});

const fmt = (n, d = 3) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");

async function main() {
  const dir = removeLater(mkdtempSync(join(tmpdir(), "keyward-bench-mcp-oauth-")));
  const config = join(dir, "keyward.json");
  const servers = {
    echo: { command: process.execPath, args: [UPSTREAM, "--stdio"], env_from_user_credentials: { ECHO_TOKEN: "t" } },
  };
  writeFileSync(config, JSON.stringify({ mcp: { servers } }));
  const masterKey = randomBytes(32).toString("base64");
  const kw = await startKeyward(ROOT, { config, env: { KEYWARD_MASTER_KEY: masterKey } });
  const { issuer } = await (await fetch(`${kw.url}/.well-known/oauth-authorization-server`)).json();
  const { secret } = await kw.admin("POST", "/keys", { owner: "user:bench", scopes: ["mcp:echo"] });
  await kw.admin("PUT", "/users/bench/credentials/t", { value: `echo-${randomBytes(16).toString("hex")}` });
  const issued = await fetch(`${kw.url}/v1/auth/token`, tokenRequest(secret));
  const tokens = {
    today: (await issued.json()).access_token,
    oauth: CONTROL
      ? (await (await fetch(`${kw.url}/v1/auth/token`, tokenRequest(secret))).json()).access_token
      : (await minter(kw.dataDir, masterKey, issuer))({
          sub: "user:bench",
          aud: `${issuer}/mcp/echo`,
          client_id: `oac_${randomBytes(12).toString("hex")}`,
          scope: "mcp:echo:echo",
        }),
  };
  if (CONTROL) log("control run: the second client holds another of today's tokens (the noise floor)");
  const clients = {};
  for (const [id, token] of Object.entries(tokens)) {
    const client = new Client({ name: `bench-${id}`, version: "0.1.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${kw.url}/mcp/echo`), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    clients[id] = client;
  }
  const listed = (await clients.oauth.listTools()).tools.map((t) => t.name);
  if (listed.join() !== (CONTROL ? "echo,big" : "echo")) throw new Error(`the per-tool token lists ${listed.join()}`);

  const order = ORDER;
  const all = { today: [], oauth: [] };
  const roundP50 = { today: [], oauth: [] };
  for (let round = 0; round < ROUNDS; round++) {
    log(`paired latency, round ${round + 1}/${ROUNDS}`);
    const r = await pairedLatency(clients, CALLS);
    for (const id of order) {
      all[id].push(...r[id]);
      roundP50[id].push(summarize(r[id]).p50);
    }
  }
  const lat = Object.fromEntries(order.map((id) => [id, summarize(all[id])]));
  const cpu = { today: [], oauth: [] };
  for (let run = 0; run < CPU_RUNS; run++) {
    for (const id of run % 2 === 0 ? order : [...order].reverse()) {
      log(`CPU ${id}, run ${run + 1}/${CPU_RUNS}, ${CONCURRENCY} in flight`);
      cpu[id].push(await cpuPerCall(clients[id], kw.pid));
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const cpuUs = Object.fromEntries(order.map((id) => [id, median(cpu[id].map((r) => r.us))]));
  const rps = Object.fromEntries(order.map((id) => [id, median(cpu[id].map((r) => r.rps))]));
  const cpuAdded = median(cpu.oauth.map((r, i) => r.us - cpu.today[i].us));
  const inproc = await inProcessChecks(issuer);
  await Promise.all(Object.values(clients).map((c) => c.close()));

  console.log(
    `\n| tools/call echo via /mcp/echo | n | p50 ms | p90 ms | p99 ms | calls/s (${CONCURRENCY} in flight) | Keyward CPU µs/call |`,
  );
  console.log("|---|---|---|---|---|---|---|");
  for (const id of order) {
    const r = lat[id];
    console.log(
      `| ${LABELS[id]} | ${r.n} | ${fmt(r.p50)} | ${fmt(r.p90)} | ${fmt(r.p99)} | ${fmt(rps[id], 0)} | ${fmt(cpuUs[id], 0)} |`,
    );
  }
  const added = lat.oauth.p50 - lat.today.p50;
  process.stdout.write("\nMCP with an OAuth token\n");
  const rows = [
    ["added p50, OAuth − today", "≤ 0.1 ms", `${fmt(added)} ms`, added <= 0.1 ? "PASS" : "FAIL"],
    [
      "(info) added p50 per round",
      "—",
      `${roundP50.oauth.map((p, i) => fmt(p - roundP50.today[i])).join(", ")} ms`,
      "INFO",
    ],
    ["(info) added p99, OAuth − today", "—", `${fmt(lat.oauth.p99 - lat.today.p99)} ms`, "INFO"],
    [
      `(info) added Keyward CPU per call (median of ${CPU_RUNS} paired runs)`,
      "—",
      `${fmt(cpuAdded, 1)} µs (runs: ${cpu.oauth.map((r, i) => fmt(r.us - cpu.today[i].us, 0)).join(", ")})`,
      "INFO",
    ],
    [
      "(info) in process, audience + tool access + the call's tool, per call",
      "—",
      `today ${fmt(inproc.today, 0)} ns, OAuth ${fmt(inproc.oauth, 0)} ns`,
      "INFO",
    ],
  ];
  for (const [name, goal, value, result] of rows) {
    process.stdout.write(`  ${result.padEnd(5)} ${name}: ${value} (target ${goal})\n`);
  }
}

// As in mcp.mjs: the SDK transport's AbortSignal listeners pass Node's warning threshold (not a leak).
process.removeAllListeners("warning");
process.on("warning", (w) => {
  if (w.name !== "MaxListenersExceededWarning") process.stderr.write(`${w.stack ?? w}\n`);
});

main()
  .catch((err) => {
    process.stderr.write(`bench mcp-oauth failed: ${err.stack ?? err}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
