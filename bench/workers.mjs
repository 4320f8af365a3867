// `node bench/workers.mjs` (after `npm run build`), or `BENCH_ONLY=workers npm run bench`: what
// `keyward serve --workers 2` gains over `--workers 1` (issue 14, item 3). The gateway scenario of
// run.mjs (same key, every check, same upstream) on `--workers 1` and `--workers 2`, next to nginx
// `proxy_pass` with `worker_processes 1` and `2` and the upstream alone, all measured in the same
// run, alternating the order each round. wrk is pinned with taskset to the last CPU where there
// are at least two (BENCH_WORKERS_PIN=0: not pinned); the servers and the upstream are not pinned.
// CPU µs/request counts the server's processes together (primary and workers; nginx's master and
// workers). Targets: --workers 2 ≥ 1.6× --workers 1 and ≥ 0.5× nginx with 2 workers, in req/s.
//
// Env: BENCH_SECONDS (10) per wrk run, BENCH_ROUNDS (2), BENCH_CONNECTIONS (50).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cpuSeconds } from "./lib/cpu.mjs";
import { envNumber } from "./lib/env.mjs";
import { setUpGateway, startKeyward } from "./lib/keyward.mjs";
import { freePort } from "./lib/net.mjs";
import { findNginx, startNginx } from "./lib/nginx.mjs";
import { killAllNow, startProcess, stopAll, track } from "./lib/procs.mjs";
import { parseWrk } from "./lib/wrk.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SECONDS = envNumber("BENCH_SECONDS", 10);
const ROUNDS = envNumber("BENCH_ROUNDS", 2);
const CONNECTIONS = envNumber("BENCH_CONNECTIONS", 50);
const CPUS = availableParallelism();
const PIN = process.env.BENCH_WORKERS_PIN !== "0" && CPUS >= 2 ? String(CPUS - 1) : undefined;

const log = (msg) => process.stderr.write(`bench/workers: ${msg}\n`);
const fmt = (n, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");
process.on("exit", killAllNow);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

const LABELS = {
  upstream: "upstream direct",
  nginx1: "nginx proxy_pass, worker_processes 1",
  nginx2: "nginx proxy_pass, worker_processes 2",
  kw1: "Keyward gateway (full checks), --workers 1",
  kw2: "Keyward gateway (full checks), --workers 2",
};

/** wrk as run.mjs runs it (-t1 --latency), under `taskset -c PIN` when pinned. */
function wrk(url, { seconds, headers }) {
  const args = ["-t1", `-c${CONNECTIONS}`, `-d${seconds}s`, "--latency"];
  for (const [k, v] of Object.entries(headers)) args.push("-H", `${k}: ${v}`);
  args.push(url);
  const [cmd, argv] = PIN ? ["taskset", ["-c", PIN, "wrk", ...args]] : ["wrk", args];
  return new Promise((resolve, reject) => {
    const child = track("wrk", spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] }));
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(parseWrk(out)) : reject(new Error(`wrk exited ${code}`))));
  });
}

async function main() {
  const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  log(`${CPUS} CPUs, load average ${load}; wrk ${PIN ? `pinned to CPU ${PIN}` : "not pinned"}`);
  const up = await startProcess("upstream", process.execPath, [join(ROOT, "bench/upstream.mjs")], {
    ready: /listening (\d+)/,
  });
  const upstreamPort = Number(up.match[1]);
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
  const scenarios = [{ id: "upstream", url: `${upstreamUrl}/hello`, pid: up.child.pid, headers: {} }];
  const nginx = findNginx();
  if (nginx) {
    for (const n of [1, 2]) {
      const ngx = await startNginx(nginx.bin, await freePort(), upstreamPort, n);
      scenarios.push({ id: `nginx${n}`, url: `${ngx.url}/hello`, pid: ngx.pid, headers: {} });
    }
  } else log("nginx is not installed: its scenarios and the nginx target are skipped");
  for (const n of [1, 2]) {
    const kw = await startKeyward(ROOT, { args: ["--workers", String(n)] });
    const secret = await setUpGateway(kw, upstreamUrl);
    scenarios.push({
      id: `kw${n}`,
      url: `${kw.url}/agents/bench/hello`,
      pid: kw.pid,
      headers: { authorization: `Bearer ${secret}` },
    });
  }
  for (const s of scenarios) {
    const res = await fetch(s.url, { headers: s.headers });
    if (res.status !== 200) throw new Error(`${LABELS[s.id]}: expected 200, got ${res.status}`);
    await res.text();
  }

  const best = {};
  const cpu = Object.fromEntries(scenarios.map((s) => [s.id, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? scenarios : [...scenarios].reverse();
    for (const s of order) {
      log(`round ${round + 1}/${ROUNDS}: ${LABELS[s.id]}`);
      await wrk(s.url, { seconds: Math.max(1, Math.round(SECONDS / 4)), headers: s.headers });
      const cpu0 = cpuSeconds(s.pid);
      const r = await wrk(s.url, { seconds: SECONDS, headers: s.headers });
      const cpu1 = cpuSeconds(s.pid);
      if (r.non2xx > 0 || r.socketErrors > 0)
        throw new Error(`${LABELS[s.id]}: ${r.non2xx} non-2xx, ${r.socketErrors} socket errors`);
      cpu[s.id].push(cpu0 !== undefined && cpu1 !== undefined ? ((cpu1 - cpu0) * 1e6) / r.requests : Number.NaN);
      if (!best[s.id] || best[s.id].rps < r.rps) best[s.id] = r;
    }
  }

  const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  console.log(
    `\n${CPUS} CPUs, load average ${load} at start; wrk -t1 -c${CONNECTIONS}, ${PIN ? `pinned to CPU ${PIN} (taskset)` : "not pinned"}`,
  );
  console.log("\n| scenario | req/s (best round) | p99 ms | CPU µs/req (median of rounds) |");
  console.log("|---|---|---|---|");
  for (const s of scenarios) {
    const r = best[s.id];
    console.log(`| ${LABELS[s.id]} | ${fmt(r.rps)} | ${fmt(r.latencyMs.p99, 2)} | ${fmt(median(cpu[s.id]), 1)} |`);
  }
  const ratio = (a, b) => best[a].rps / best[b].rps;
  const lines = [["--workers 2 ÷ --workers 1", ratio("kw2", "kw1"), 1.6]];
  if (best.nginx2) {
    lines.push(["--workers 2 ÷ nginx worker_processes 2", ratio("kw2", "nginx2"), 0.5]);
    lines.push(["nginx 2 ÷ nginx 1 (what 2 workers can gain here)", ratio("nginx2", "nginx1"), undefined]);
  }
  console.log("");
  for (const [what, value, target] of lines) {
    const verdict = target === undefined ? "" : ` (target ≥ ${target}: ${value >= target ? "PASS" : "FAIL"})`;
    console.log(`${what}: req/s ${fmt(value, 3)}${verdict}`);
  }
  console.log(
    `CPU µs/req --workers 2 ÷ --workers 1: ${fmt(median(cpu.kw2) / median(cpu.kw1), 3)} (what the second process and the primary's hand-off cost)`,
  );
}

try {
  await main();
} finally {
  await stopAll();
}
