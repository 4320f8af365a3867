// The gateway's own CPU per request (issue 14 item 1): Keyward's gateway with full checks against
// the bare proxy on the same undici client (target: CPU µs/req ≤ 1.3×) and against nginx
// proxy_pass (target: req/s ≥ 0.5×), all measured in this run, rounds alternating.
//
// CPU µs/req is the CPU time of the proxy process alone divided by the requests it served: on a
// shared machine it moves far less than req/s does. With BENCH_CPU_PROF=<dir> a second Keyward,
// started with --cpu-prof, takes one more run of the key scenario alone and its top frames by
// self time are printed (bench/gateway-profile-top.mjs).
//
// Env: BENCH_SECONDS (5) per wrk run, BENCH_ROUNDS (3), BENCH_CONNECTIONS (50), BENCH_CPU_PROF,
// BENCH_PROFILE_ONLY=1 (with BENCH_CPU_PROF: the profiled run alone), BENCH_GATEWAY_BASELINE_ROOT=<dir>
// (another built checkout, e.g. `git archive <commit>` + `tsc -b`: its gateway is measured in the
// same rounds, so a change's effect is not lost in a shared machine's drift).
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { printTop } from "./gateway-profile-top.mjs";
import { cpuSeconds } from "./lib/cpu.mjs";
import { envNumber } from "./lib/env.mjs";
import { setUpGateway, startKeyward } from "./lib/keyward.mjs";
import { freePort } from "./lib/net.mjs";
import { findNginx, startNginx } from "./lib/nginx.mjs";
import { startProcess, stopAll } from "./lib/procs.mjs";
import { runWrk } from "./lib/wrk.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SECONDS = envNumber("BENCH_SECONDS", 5);
const ROUNDS = envNumber("BENCH_ROUNDS", 3);
const CONNECTIONS = envNumber("BENCH_CONNECTIONS", 50);
const CPU_PROF = process.env.BENCH_CPU_PROF ? resolve(process.env.BENCH_CPU_PROF) : undefined;
// With BENCH_CPU_PROF: only the profiled run (while working on the hot path).
const BASELINE_ROOT = process.env.BENCH_GATEWAY_BASELINE_ROOT;
const PROFILE_ONLY = CPU_PROF !== undefined && process.env.BENCH_PROFILE_ONLY === "1";
const log = (msg) => process.stderr.write(`bench gateway-profile: ${msg}\n`);
const fmt = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");

const LABELS = {
  bareUndici: "bare proxy, undici client",
  nginx: "nginx proxy_pass (1 worker)",
  gateway: "Keyward gateway, API key (full checks)",
  gatewayJwt: "Keyward gateway, access token (full checks)",
  gatewayBaseline: "Keyward gateway at BENCH_GATEWAY_BASELINE_ROOT, API key (full checks)",
};

async function accessToken(kw, secret) {
  const res = await fetch(`${kw.url}/v1/auth/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ api_key: secret }),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`/v1/auth/token answered ${res.status}`);
  return body.access_token;
}

async function mustAnswer(s) {
  const res = await fetch(s.url, { headers: s.headers });
  const text = await res.text();
  if (res.status !== 200 || !text.includes("hello from the agent")) {
    throw new Error(`${LABELS[s.id]}: expected 200 from the agent, got ${res.status} ${text.slice(0, 200)}`);
  }
}

/** One wrk run of `s` after a warm-up, with the CPU its process used per request. */
async function measure(s, seconds) {
  const warm = await runWrk(s.url, {
    seconds: Math.max(1, Math.round(seconds / 4)),
    connections: CONNECTIONS,
    headers: s.headers,
  });
  const cpu0 = cpuSeconds(s.pid);
  const r = await runWrk(s.url, { seconds, connections: CONNECTIONS, headers: s.headers });
  const cpu1 = cpuSeconds(s.pid);
  const cpuUs = ((cpu1 - cpu0) * 1e6) / r.requests;
  return { rps: r.rps, p99: r.latencyMs.p99, cpuUs, requests: r.requests, total: warm.requests + r.requests };
}

/** A separate, profiled Keyward: the profiler's own cost stays out of the measured figures. */
async function profile(upstreamUrl) {
  const prof = await startKeyward(ROOT, { cpuProfDir: CPU_PROF });
  const s2 = await setUpGateway(prof, upstreamUrl);
  const s = {
    id: "gateway",
    url: `${prof.url}/agents/bench/hello`,
    headers: { authorization: `Bearer ${s2}` },
    pid: prof.pid,
  };
  await mustAnswer(s);
  // Three times as long: V8 samples every millisecond, and small frames need the samples.
  log("profiled run of the gateway, API key");
  const r = await measure(s, SECONDS * 3);
  log(`profiled process served ${r.total} requests in all (${r.cpuUs.toFixed(1)} CPU µs/req while profiled)`);
}

async function main() {
  const node = process.execPath;
  const up = await startProcess("upstream", node, [join(ROOT, "bench/upstream.mjs")], { ready: /listening (\d+)/ });
  const upstreamPort = Number(up.match[1]);
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
  const bare = await startProcess("bare undici proxy", node, [join(ROOT, "bench/bare-undici-proxy.mjs")], {
    env: { UPSTREAM_PORT: String(upstreamPort) },
    ready: /listening (\d+)/,
  });
  const nginxBin = findNginx();
  if (!nginxBin) log("nginx is not installed: its ratio is skipped");
  const ngx = nginxBin ? await startNginx(nginxBin.bin, await freePort(), upstreamPort) : undefined;
  // One Keyward process (startKeyward's default), as nginx runs one worker.
  const kw = await startKeyward(ROOT);
  const secret = await setUpGateway(kw, upstreamUrl);
  const jwt = await accessToken(kw, secret);
  const scenarios = [
    { id: "bareUndici", url: `http://127.0.0.1:${bare.match[1]}/hello`, pid: bare.child.pid },
    ...(ngx ? [{ id: "nginx", url: `${ngx.url}/hello`, pid: ngx.pid }] : []),
    { id: "gateway", url: `${kw.url}/agents/bench/hello`, headers: { authorization: `Bearer ${secret}` }, pid: kw.pid },
    { id: "gatewayJwt", url: `${kw.url}/agents/bench/hello`, headers: { authorization: `Bearer ${jwt}` }, pid: kw.pid },
  ];
  if (BASELINE_ROOT) {
    // startKeyward passes `--workers 1`: an older checkout must accept (or be patched to ignore) it.
    const base = await startKeyward(resolve(BASELINE_ROOT));
    const baseSecret = await setUpGateway(base, upstreamUrl);
    scenarios.push({
      id: "gatewayBaseline",
      url: `${base.url}/agents/bench/hello`,
      headers: { authorization: `Bearer ${baseSecret}` },
      pid: base.pid,
    });
  }
  for (const s of scenarios) await mustAnswer(s);

  if (PROFILE_ONLY) return profile(upstreamUrl);
  const runs = Object.fromEntries(scenarios.map((s) => [s.id, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? scenarios : [...scenarios].reverse();
    for (const s of order) {
      log(`round ${round + 1}/${ROUNDS}: ${LABELS[s.id]}`);
      runs[s.id].push(await measure(s, SECONDS));
    }
  }
  // req/s: the best round (the least disturbed); CPU µs/req: the median round (it barely drifts).
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const best = {};
  for (const [id, rs] of Object.entries(runs)) {
    best[id] = {
      rps: Math.max(...rs.map((r) => r.rps)),
      cpuUs: median(rs.map((r) => r.cpuUs)),
      p99: median(rs.map((r) => r.p99)),
    };
  }

  console.log(
    `\n| scenario (c${CONNECTIONS}, ${SECONDS} s × ${ROUNDS} rounds) | req/s (best) | CPU µs/req (median) | p99 ms (median) |`,
  );
  console.log("|---|---:|---:|---:|");
  for (const [id, b] of Object.entries(best)) {
    console.log(`| ${LABELS[id]} | ${fmt(b.rps, 0)} | ${fmt(b.cpuUs, 1)} | ${fmt(b.p99, 3)} |`);
  }
  const g = best.gateway;
  const cpuRatio = g.cpuUs / best.bareUndici.cpuUs;
  const rows = [
    ["CPU µs/req gateway ÷ bare undici proxy", "≤ 1.30", cpuRatio, cpuRatio <= 1.3],
    ["CPU µs/req gateway (access token) ÷ bare undici proxy", "—", best.gatewayJwt.cpuUs / best.bareUndici.cpuUs],
  ];
  if (best.gatewayBaseline) {
    rows.push(["(info) CPU µs/req gateway ÷ the baseline checkout's", "—", g.cpuUs / best.gatewayBaseline.cpuUs]);
    rows.push([
      "(info) CPU µs/req baseline checkout ÷ bare undici proxy",
      "—",
      best.gatewayBaseline.cpuUs / best.bareUndici.cpuUs,
    ]);
  }
  if (best.nginx) rows.push(["req/s gateway ÷ nginx", "≥ 0.50", g.rps / best.nginx.rps, g.rps / best.nginx.rps >= 0.5]);
  rows.push(["(info) req/s gateway ÷ bare undici proxy", "—", g.rps / best.bareUndici.rps]);
  console.log("");
  for (const [name, goal, value, pass] of rows) {
    const result = pass === undefined ? "INFO" : pass ? "PASS" : "FAIL";
    console.log(`  ${result.padEnd(5)} ${name}: ${fmt(value)}× (target ${goal})`);
  }

  if (CPU_PROF) await profile(upstreamUrl);
}

try {
  await main();
} catch (err) {
  log(`failed: ${err.stack ?? err}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}
if (CPU_PROF && process.exitCode !== 1) printTop(CPU_PROF, 30);
