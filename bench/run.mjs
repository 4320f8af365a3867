// `npm run bench`: Keyward's gateway against baselines measured in the same run on this machine
// (the upstream alone, a bare node:http proxy, nginx), then key verification with a million keys
// in the store. Prints ratios and PASS/FAIL per target; writes bench/results/latest.json.
//
// Env: BENCH_SECONDS (10) per wrk run, BENCH_ROUNDS (2), BENCH_CONNECTIONS (50),
// BENCH_KEYS (1000000), BENCH_LOOKUPS (5000), BENCH_CPU_PROF=<dir> to profile Keyward.
import { spawnSync } from "node:child_process";
import { cpus } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { insertKeys } from "./lib/bulk-keys.mjs";
import { cpuSeconds } from "./lib/cpu.mjs";
import { envNumber } from "./lib/env.mjs";
import { checkLatencyP99, verifyInProcess } from "./lib/inprocess.mjs";
import { FULL_CHECKS, setUpGateway, startKeyward } from "./lib/keyward.mjs";
import { freePort } from "./lib/net.mjs";
import { findNginx, startNginx } from "./lib/nginx.mjs";
import { killAllNow, startProcess, stopAll } from "./lib/procs.mjs";
import { evaluate, printCache, printScenarios, printTargets, writeJson } from "./lib/report.mjs";
import { closeAgent, summarize, timedGet } from "./lib/sequential.mjs";
import { runWrk } from "./lib/wrk.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const env = (name, fallback) => envNumber(name, fallback);
const SECONDS = env("BENCH_SECONDS", 10);
const ROUNDS = env("BENCH_ROUNDS", 2);
const CONNECTIONS = env("BENCH_CONNECTIONS", 50);
const KEYS = env("BENCH_KEYS", 1_000_000);
const LOOKUPS = env("BENCH_LOOKUPS", 5000);
const CPU_PROF = process.env.BENCH_CPU_PROF ? resolve(process.env.BENCH_CPU_PROF) : undefined;

const LABELS = {
  upstream: "upstream direct",
  bare: "bare node:http proxy",
  bareUndici: "bare proxy, undici client",
  nginx: "nginx proxy_pass",
  gateway: "Keyward gateway (full checks)",
  gatewayJwt: "Keyward gateway, access token",
};

const log = (msg) => process.stderr.write(`bench: ${msg}\n`);

function machine() {
  const lscpu = spawnSync("lscpu", [], { encoding: "utf8" }).stdout ?? "";
  const model = /^Model name:\s*(.+)$/m.exec(lscpu)?.[1]?.trim() ?? cpus()[0]?.model;
  const wrk = spawnSync("wrk", ["-v"], { encoding: "utf8" });
  return {
    cpus: cpus().length,
    model,
    node: process.version,
    wrk: /wrk (\S+)/.exec(`${wrk.stdout}${wrk.stderr}`)?.[1],
  };
}

async function startServers() {
  const node = process.execPath;
  const up = await startProcess("upstream", node, [join(ROOT, "bench/upstream.mjs")], { ready: /listening (\d+)/ });
  const upstreamPort = Number(up.match[1]);
  const bare = await startProcess("bare proxy", node, [join(ROOT, "bench/bare-proxy.mjs")], {
    env: { UPSTREAM_PORT: String(upstreamPort) },
    ready: /listening (\d+)/,
  });
  const bareUndici = await startProcess("bare undici proxy", node, [join(ROOT, "bench/bare-undici-proxy.mjs")], {
    env: { UPSTREAM_PORT: String(upstreamPort) },
    ready: /listening (\d+)/,
  });
  const nginx = findNginx();
  if (!nginx) log("nginx is not installed: the nginx scenario and its target are skipped");
  const ngx = nginx ? await startNginx(nginx.bin, await freePort(), upstreamPort) : undefined;
  const kw = await startKeyward(ROOT, { cpuProfDir: CPU_PROF });
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
  const secret = await setUpGateway(kw, upstreamUrl);
  const accessToken = await accessTokenFor(kw, secret);
  // `pid`: the process whose CPU time is charged to the scenario (the proxy, or the upstream alone).
  const scenarios = [
    { id: "upstream", url: `${upstreamUrl}/hello`, pid: up.child.pid },
    { id: "bare", url: `http://127.0.0.1:${bare.match[1]}/hello`, pid: bare.child.pid },
    { id: "bareUndici", url: `http://127.0.0.1:${bareUndici.match[1]}/hello`, pid: bareUndici.child.pid },
    ...(ngx ? [{ id: "nginx", url: `${ngx.url}/hello`, pid: ngx.pid }] : []),
    {
      id: "gateway",
      url: `${kw.url}/agents/bench/hello`,
      headers: { authorization: `Bearer ${secret}` },
      pid: kw.pid,
    },
    {
      id: "gatewayJwt",
      url: `${kw.url}/agents/bench/hello`,
      headers: { authorization: `Bearer ${accessToken}` },
      pid: kw.pid,
    },
  ];
  // Each path must really answer 200 with the agent's body before it is timed.
  for (const s of scenarios) {
    const res = await fetch(s.url, { headers: s.headers });
    const text = await res.text();
    if (res.status !== 200 || !text.includes("hello from the agent")) {
      throw new Error(`${LABELS[s.id]}: expected 200 from the agent, got ${res.status} ${text.slice(0, 200)}`);
    }
  }
  return { kw, secret, scenarios, nginxVersion: nginx?.version };
}

/** The same key exchanged for an access token (`POST /v1/auth/token`): the JWT scenario's credential. */
async function accessTokenFor(kw, secret) {
  const res = await fetch(`${kw.url}/v1/auth/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ api_key: secret }),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`/v1/auth/token answered ${res.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

/** Every scenario, ROUNDS times (alternating order, so drift on a shared machine hits all alike). */
async function throughput(scenarios) {
  const rounds = [];
  const warm = Math.max(1, Math.round(SECONDS / 4));
  const c1Seconds = Math.max(2, Math.round(SECONDS / 2));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? scenarios : [...scenarios].reverse();
    const results = {};
    for (const s of order) {
      log(`round ${round + 1}/${ROUNDS}: ${LABELS[s.id]}`);
      await runWrk(s.url, { seconds: warm, connections: CONNECTIONS, headers: s.headers });
      const cpu0 = cpuSeconds(s.pid);
      const c50 = await runWrk(s.url, { seconds: SECONDS, connections: CONNECTIONS, headers: s.headers });
      const cpu1 = cpuSeconds(s.pid);
      if (cpu0 !== undefined && cpu1 !== undefined && c50.requests) {
        c50.cpuUsPerRequest = ((cpu1 - cpu0) * 1e6) / c50.requests;
      }
      const c1 = await runWrk(s.url, { seconds: c1Seconds, connections: 1, headers: s.headers });
      results[s.id] = { c50: { ...c50, connections: CONNECTIONS }, c1: { ...c1, connections: 1 } };
    }
    rounds.push(results);
  }
  // Per scenario and load, the round with the most requests/s: the one least disturbed by others.
  const best = {};
  for (const s of scenarios) {
    const pick = (load) => rounds.map((r) => r[s.id][load]).reduce((a, b) => (b.rps > a.rps ? b : a));
    best[s.id] = { c50: pick("c50"), c1: pick("c1") };
  }
  return { rounds, best };
}

/** Sequential /v1/verify latency: hits on a near-empty store, then misses and hits with KEYS keys. */
async function cacheMisses(kw, secret) {
  const url = `${kw.url}/v1/verify`;
  const headers = (s) => ({ authorization: `Bearer ${s}`, "x-original-uri": "/agents/bench/v1/ping" });
  const t0 = performance.now();
  const timed = async (s, trace) => {
    const r = await timedGet(url, headers(s));
    if (r.status !== 200) throw new Error(`/v1/verify answered ${r.status} for a valid key`);
    trace?.push([Math.round(performance.now() - t0), r.ms]);
    return r.ms;
  };
  for (let i = 0; i < 2000; i++) await timed(secret);
  const before = [];
  for (let i = 0; i < LOOKUPS; i++) before.push(await timed(secret));

  log(`inserting ${KEYS.toLocaleString("en")} keys into the store`);
  const t1 = performance.now();
  const { secrets, total } = await insertKeys(ROOT, kw.dataDir, {
    masterKey: kw.masterKey,
    count: KEYS,
    sample: LOOKUPS,
    owner: "consumer:bench",
    policy: FULL_CHECKS,
  });
  log(`inserted in ${((performance.now() - t1) / 1000).toFixed(1)} s; store holds ${total.toLocaleString("en")} keys`);

  // Misses and hits alternate, so both see the same machine state.
  const miss = [];
  const after = [];
  const trace = [];
  for (const s of secrets) {
    miss.push(await timed(s, trace));
    after.push(await timed(secret));
  }
  closeAgent();
  // The same kind of misses again, timed inside one process (fresh cache, same store).
  const fresh = await insertKeys(ROOT, kw.dataDir, {
    masterKey: kw.masterKey,
    idTag: "inproc",
    count: LOOKUPS,
    sample: LOOKUPS,
    owner: "consumer:bench",
    policy: FULL_CHECKS,
  });
  const inproc = await verifyInProcess(ROOT, kw.dataDir, {
    misses: fresh.secrets,
    hit: secret,
    masterKey: kw.masterKey,
  });
  // The slowest misses with when they happened (ms since the phase began): periodic spikes point
  // at background work on the event loop rather than at the lookup itself.
  const slowest = trace.sort((a, b) => b[1] - a[1]).slice(0, 20);
  return {
    keys: total,
    hitBefore: summarize(before),
    miss: summarize(miss),
    hitAfter: summarize(after),
    slowest,
    inproc,
  };
}

function printInProcess(r) {
  const row = (name, x) =>
    `| ${name} | ${x.n} | ${x.p50.toFixed(4)} | ${x.p90.toFixed(4)} | ${x.p99.toFixed(4)} | ${x.max.toFixed(3)} |`;
  console.log("\n| verification in process | n | p50 ms | p90 ms | p99 ms | max ms |");
  console.log("|---|---|---|---|---|---|");
  console.log(row("miss (store read + parse)", r.miss));
  console.log(row("hit (memory)", r.hit));
}

async function main() {
  if (spawnSync("wrk", ["-v"]).error) throw new Error("wrk is not installed (apt-get install -y wrk)");
  const started = Date.now();
  const info = machine();
  log(`${info.cpus} × ${info.model}, node ${info.node}, wrk ${info.wrk}; ${SECONDS} s per run, ${ROUNDS} rounds`);
  const { kw, secret, scenarios, nginxVersion } = await startServers();
  const { rounds, best } = await throughput(scenarios);
  const checks = await checkLatencyP99(kw.url);
  const cache = await cacheMisses(kw, secret);

  printScenarios(best, LABELS);
  printCache(cache);
  printInProcess(cache.inproc);
  const targets = evaluate({ best, cache, checks, inproc: cache.inproc });
  printTargets(targets);
  const out = join(ROOT, "bench/results/latest.json");
  writeJson(out, {
    date: new Date().toISOString(),
    machine: { ...info, nginx: nginxVersion ?? null },
    settings: { seconds: SECONDS, rounds: ROUNDS, connections: CONNECTIONS, keys: KEYS, lookups: LOOKUPS },
    best,
    rounds,
    cache,
    checks,
    targets,
    durationS: Math.round((Date.now() - started) / 1000),
  });
  log(`wrote ${out} (${Math.round((Date.now() - started) / 1000)} s)`);
}

let interrupted = false;
process.on("exit", killAllNow);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    interrupted = true;
    log(`${signal}: stopping`);
    stopAll(2_000).finally(() => process.exit(130));
  });
}

/**
 * The other suites, each a standalone script that measures its own baseline in the same run:
 * run one after another (never in parallel: each needs the machine to itself).
 */
const SUITES = [
  ["tokens", "token issuance vs raw ES256 signing (issue 3)"],
  ["sdk-verifier", "SDK verifier vs raw ES256 verification (issue 3)"],
  ["sdk-client", "kw.get() vs Map.get (issue 4)"],
  ["credentials", "GET /v1/credentials with 100 credentials, SSE fan-out (issue 4)"],
  ["rotation", "rotation reaching 1,000 SDK clients (issue 4)"],
  ["egress", "redaction throughput, egress overhead (issues 4 and 6)"],
  ["mcp", "MCP gateway tools/call overhead vs the upstream called directly (issue 6)"],
  ["mcp-oauth", "MCP tools/call with an MCP client's OAuth token vs today's token (issue 16)"],
  ["redis-limits", "Redis-backed limits vs in-memory (issue 5)"],
  ["replicas", "revocation propagation across 3 replicas (issue 5)"],
  ["access-log", "the gateway with the access log on vs off (issue 12)"],
  ["usage", "usage counting + detectors on vs off; 30-day usage query with 10,000 keys (issue 13)"],
  ["auto-freeze", "a key crossing a freeze rule refused on 3 replicas (issue 13)"],
  ["python-sdk", "Python SDK: kw.get() and the verifier in CPython vs dict and raw cryptography (issue 17)"],
  [
    "workload-exchange",
    "workload identity: a service-account token exchanged at /oauth/token vs client_credentials (issue 16)",
  ],
  ["workers", "keyward serve --workers 2 vs --workers 1 vs nginx with 1 and 2 worker processes (issue 14)"],
  ["gateway-profile", "gateway CPU µs/req vs the bare undici proxy, req/s vs nginx, top profile frames (issue 14)"],
];

function runSuites(only) {
  let failed = 0;
  for (const [name, what] of SUITES) {
    if (only && !only.has(name)) continue;
    log(`suite ${name}: ${what}`);
    console.log(`\n## ${name}: ${what}\n`);
    const r = spawnSync(process.execPath, [join(ROOT, "bench", `${name}.mjs`)], { stdio: "inherit" });
    if (r.status !== 0) {
      failed++;
      log(`suite ${name} exited ${r.status ?? r.signal}`);
    }
  }
  if (failed > 0) process.exitCode = 1;
}

// BENCH_ONLY=gateway,tokens,… runs a subset (names: gateway and the SUITES above).
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(",").map((s) => s.trim())) : undefined;

try {
  if (!ONLY || ONLY.has("gateway")) await main();
  await stopAll();
  runSuites(ONLY);
} catch (err) {
  // After Ctrl-C the runs fail because their processes were stopped: that is not news.
  if (!interrupted) log(`failed: ${err instanceof Error ? err.message : err}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}
