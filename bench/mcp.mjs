// MCP gateway (issue 6): what `/mcp/{server}` adds to a `tools/call`, against the same upstream
// called directly, in this run. The tool is a trivial echo (bench/mcp-upstream.mjs), warm.
//
// 1. Latency, sequential calls on one MCP session (official SDK Client on both sides):
//    stdio: direct (our own stdio process) vs gateway (Streamable HTTP → the user's warm stdio
//    process, its credential in the environment); HTTP: direct Streamable HTTP vs gateway → that
//    HTTP upstream with the credential injected as a header. Target: added p50 ≤ 2 ms.
// 2. (info) Throughput: BENCH_MCP_CONCURRENCY calls in flight on one session for a few seconds,
//    with the server side's CPU per call (the upstream; plus Keyward, and the user's stdio process
//    it started, through the gateway): steadier than calls/s on a shared machine.
// 3. (info) A 1 MiB tool result holding 10 of the user's credentials (raw, base64, hex), direct
//    vs through the gateway, which redacts it. The target for redaction itself (≥ 100 MB/s over
//    1 MiB with 10 secrets) is measured in process by the egress suite: the same redactor.
//
// Env: BENCH_MCP_CALLS (2000) per latency round, BENCH_MCP_ROUNDS (2), BENCH_MCP_CONCURRENCY (16),
// BENCH_MCP_SECONDS (3) per throughput run, BENCH_MCP_BIG_CALLS (40) per round of 1 MiB results,
// BENCH_CPU_PROF=<dir> to profile Keyward.
// Run after `npm run build`.
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { cpuSeconds } from "./lib/cpu.mjs";
import { envNumber } from "./lib/env.mjs";
import { startKeyward } from "./lib/keyward.mjs";
import { removeLater, startProcess, stopAll } from "./lib/procs.mjs";
import { summarize } from "./lib/sequential.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const UPSTREAM = join(ROOT, "bench/mcp-upstream.mjs");
const CALLS = envNumber("BENCH_MCP_CALLS", 2000, { integer: true });
const ROUNDS = envNumber("BENCH_MCP_ROUNDS", 2, { integer: true });
const CONCURRENCY = envNumber("BENCH_MCP_CONCURRENCY", 16, { integer: true });
const SECONDS = envNumber("BENCH_MCP_SECONDS", 3);
const BIG_CALLS = envNumber("BENCH_MCP_BIG_CALLS", 40, { integer: true });
const MIB = 1 << 20;
const CPU_PROF = process.env.BENCH_CPU_PROF ? resolve(process.env.BENCH_CPU_PROF) : undefined;
const log = (msg) => process.stderr.write(`bench mcp: ${msg}\n`);

const LABELS = {
  stdioDirect: "stdio upstream, direct",
  stdioGateway: "stdio upstream via /mcp (warm per-user process)",
  httpDirect: "HTTP upstream, direct",
  httpGateway: "HTTP upstream via /mcp (header injected)",
};
const PAIRS = [
  ["stdio", "stdioDirect", "stdioGateway"],
  ["HTTP", "httpDirect", "httpGateway"],
];

async function connect(transport) {
  const client = new Client({ name: "bench-mcp", version: "0.1.0" });
  await client.connect(transport);
  return client;
}

const http = (url, headers) => new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });

/** One echo call; throws unless the tool's own answer came back (an error is not a fast call). */
async function echo(client, text) {
  const r = await client.callTool({ name: "echo", arguments: { text } });
  if (r.isError || r.content?.[0]?.text !== text) throw new Error(`echo answered ${JSON.stringify(r).slice(0, 300)}`);
}

async function latency(client, n) {
  for (let i = 0; i < 200; i++) await echo(client, `warm ${i}`);
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await echo(client, `call ${i}`);
    samples.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return summarize(samples);
}

/** Calls/s with CONCURRENCY in flight, and CPU µs per call summed over `pids` (with their children). */
async function throughput(client, pids) {
  const cpu = () => pids.reduce((sum, pid) => sum + (cpuSeconds(pid) ?? Number.NaN), 0);
  const cpu0 = cpu();
  let calls = 0;
  const end = performance.now() + SECONDS * 1000;
  const worker = async (w) => {
    while (performance.now() < end) {
      await echo(client, `w${w} ${calls}`);
      calls++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
  const elapsed = (performance.now() - start) / 1000;
  return { rps: calls / elapsed, cpuUsPerCall: ((cpu() - cpu0) * 1e6) / calls };
}

/** Secrets in the `big` output, as counted on the direct path (which runs first). */
let bigSecretsSeen = Number.POSITIVE_INFINITY;

/** How many times any of `forms` occurs in `text`. */
const occurrences = (text, forms) => forms.reduce((n, f) => n + text.split(f).length - 1, 0);

/**
 * Sequential `big` calls: p50 ms. Each result is checked: direct, it holds the secrets (raw,
 * base64, hex); through the gateway, none of them, and a `[redacted]` for each one there was.
 */
async function bigResults(client, secrets, redacted) {
  const forms = secrets.flatMap((s) => [s, Buffer.from(s).toString("base64"), Buffer.from(s).toString("hex")]);
  const samples = [];
  for (let i = 0; i < BIG_CALLS + 3; i++) {
    const t = process.hrtime.bigint();
    const r = await client.callTool({ name: "big", arguments: {} });
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    if (i >= 3) samples.push(ms);
    const text = r.content?.[0]?.text ?? "";
    const leaks = occurrences(text, forms);
    const marks = occurrences(text, ["[redacted]"]);
    const ok = redacted ? leaks === 0 && marks >= bigSecretsSeen : leaks > 0;
    if (r.isError || text.length < MIB * 0.9 || !ok) {
      throw new Error(`big answered ${text.length} chars, ${leaks} secrets, ${marks} redactions`);
    }
    if (!redacted) bigSecretsSeen = leaks;
  }
  return summarize(samples);
}

/** Keyward with the upstreams behind `/mcp/echo`, `/mcp/echo-http`, `/mcp/echo-big`, and a user `bench`. */
async function startGateway(httpUpstream, token, secrets) {
  const dir = removeLater(mkdtempSync(join(tmpdir(), "keyward-bench-mcp-")));
  const config = join(dir, "keyward.json");
  const servers = {
    echo: {
      command: process.execPath,
      args: [UPSTREAM, "--stdio"],
      env_from_user_credentials: { ECHO_TOKEN: "echo_token" },
    },
    "echo-http": { url: httpUpstream, headers_from_user_credentials: { Authorization: "Bearer {echo_token}" } },
    "echo-big": {
      command: process.execPath,
      args: [UPSTREAM, "--stdio"],
      env_from_user_credentials: Object.fromEntries(secrets.map((_, i) => [`SECRET_${i}`, `secret_${i}`])),
    },
  };
  writeFileSync(config, JSON.stringify({ mcp: { servers } }));
  const kw = await startKeyward(ROOT, { config, cpuProfDir: CPU_PROF });
  const scopes = ["mcp:echo", "mcp:echo-http", "mcp:echo-big"];
  const { secret } = await kw.admin("POST", "/keys", { owner: "user:bench", scopes });
  await kw.admin("PUT", "/users/bench/credentials/echo_token", { value: token });
  for (const [i, value] of secrets.entries()) await kw.admin("PUT", `/users/bench/credentials/secret_${i}`, { value });
  return { kw, secret };
}

const fmt = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");

function report(lat, tput, big) {
  console.log(
    `\n| tools/call, echo | n | p50 ms | p90 ms | p99 ms | calls/s (${CONCURRENCY} in flight) | server CPU µs/call |`,
  );
  console.log("|---|---|---|---|---|---|---|");
  for (const [id, label] of Object.entries(LABELS)) {
    const r = lat[id];
    const t = tput[id];
    const cells = [r.n, fmt(r.p50, 3), fmt(r.p90, 3), fmt(r.p99, 3), fmt(t.rps, 0), fmt(t.cpuUsPerCall, 0)];
    console.log(`| ${label} | ${cells.join(" | ")} |`);
  }
  const rows = [];
  for (const [kind, direct, gw] of PAIRS) {
    const added = lat[gw].p50 - lat[direct].p50;
    const info = (name, value) => rows.push([`(info) ${name}, ${kind}`, "—", value, "INFO"]);
    rows.push([
      `added p50, ${kind} upstream, gateway − direct`,
      "≤ 2 ms",
      `${fmt(added, 3)} ms`,
      added <= 2 ? "PASS" : "FAIL",
    ]);
    info("p50 ratio gateway ÷ direct", `${fmt(lat[gw].p50 / lat[direct].p50)}×`);
    info("added p99, gateway − direct", `${fmt(lat[gw].p99 - lat[direct].p99, 3)} ms`);
    info("throughput ratio gateway ÷ direct", `${fmt(tput[gw].rps / tput[direct].rps)}×`);
    info("added server CPU per call", `${fmt(tput[gw].cpuUsPerCall - tput[direct].cpuUsPerCall, 0)} µs`);
  }
  const added = big.gateway.p50 - big.direct.p50;
  rows.push([
    "(info) 1 MiB tool result with 10 credentials in it, p50 direct → via gateway (redacted)",
    "—",
    `${fmt(big.direct.p50)} → ${fmt(big.gateway.p50)} ms (+${fmt(added)} ms; ${fmt(1.048576 / (big.gateway.p50 / 1000))} MB/s end to end)`,
    "INFO",
  ]);
  process.stdout.write("\nMCP gateway\n");
  for (const [name, goal, value, result] of rows) {
    process.stdout.write(`  ${result.padEnd(5)} ${name}: ${value} (target ${goal})\n`);
  }
}

async function main() {
  const token = `echo-${randomBytes(24).toString("base64url")}`;
  const up = await startProcess("mcp http upstream", process.execPath, [UPSTREAM, "--http"], {
    env: { ECHO_TOKEN: token },
    ready: /listening (\d+)/,
  });
  const httpUpstream = `http://127.0.0.1:${up.match[1]}/mcp`;
  const secrets = Array.from({ length: 10 }, () => `sk-${randomBytes(24).toString("base64url")}`);
  const { kw, secret } = await startGateway(httpUpstream, token, secrets);
  const user = { authorization: `Bearer ${secret}` };
  const stdio = new StdioClientTransport({
    command: process.execPath,
    args: [UPSTREAM, "--stdio"],
    env: { PATH: process.env.PATH ?? "", ECHO_TOKEN: token },
  });
  const clients = {
    stdioDirect: await connect(stdio),
    stdioGateway: await connect(http(`${kw.url}/mcp/echo`, user)),
    httpDirect: await connect(http(httpUpstream, { authorization: `Bearer ${token}` })),
    httpGateway: await connect(http(`${kw.url}/mcp/echo-http`, user)),
  };
  // Whose CPU a call costs: the upstream, plus Keyward through the gateway (the user's stdio
  // process is Keyward's child, counted with it).
  const pids = {
    stdioDirect: [stdio.pid],
    stdioGateway: [kw.pid],
    httpDirect: [up.child.pid],
    httpGateway: [kw.pid, up.child.pid],
  };
  const order = Object.keys(LABELS);

  // Alternating order, best round (lowest p50) per path: drift on a shared machine hits all alike.
  const lat = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const id of round % 2 === 0 ? order : [...order].reverse()) {
      log(`latency ${id}, round ${round + 1}/${ROUNDS}`);
      const r = await latency(clients[id], CALLS);
      if (!lat[id] || r.p50 < lat[id].p50) lat[id] = r;
    }
  }
  const tput = {};
  for (const id of order) {
    log(`throughput ${id}, ${CONCURRENCY} in flight`);
    tput[id] = await throughput(clients[id], pids[id]);
  }

  const secretEnv = Object.fromEntries(secrets.map((v, i) => [`SECRET_${i}`, v]));
  const bigClients = {
    direct: await connect(
      new StdioClientTransport({ command: process.execPath, args: [UPSTREAM, "--stdio"], env: secretEnv }),
    ),
    gateway: await connect(http(`${kw.url}/mcp/echo-big`, user)),
  };
  const big = {};
  for (let round = 0; round < 2; round++) {
    for (const id of round === 0 ? ["direct", "gateway"] : ["gateway", "direct"]) {
      log(`1 MiB results, ${id}, round ${round + 1}/2`);
      const r = await bigResults(bigClients[id], secrets, id === "gateway");
      if (!big[id] || r.p50 < big[id].p50) big[id] = r;
    }
  }
  await Promise.all([...Object.values(clients), ...Object.values(bigClients)].map((c) => c.close()));
  report(lat, tput, big);
}

// The SDK's HTTP client transport hands one AbortSignal to every fetch of a session, and undici
// drops each listener only when its request is garbage-collected: with thousands of calls a
// second that passes Node's warning threshold without being a leak. Not Keyward's process.
process.removeAllListeners("warning");
process.on("warning", (w) => {
  if (w.name !== "MaxListenersExceededWarning") process.stderr.write(`${w.stack ?? w}\n`);
});

main()
  .catch((err) => {
    process.stderr.write(`bench mcp failed: ${err.stack ?? err}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
