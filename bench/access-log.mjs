// `node bench/access-log.mjs` (after `npm run build`), or `BENCH_ONLY=access-log npm run bench`:
// what the access log (`KEYWARD_ACCESS_LOG=1`) costs the gateway. The gateway scenario of
// run.mjs (same key, every check, same upstream) on two `keyward serve` processes at
// KEYWARD_LOG_LEVEL=info, one with the access log and one without, next to the bare node:http
// proxy measured in the same run. The access lines go to a pipe this process reads, as they would
// to a container runtime or journald. Prints the table and the ratios; exits 0.
//
// Env: BENCH_SECONDS (10) per wrk run, BENCH_ROUNDS (2), BENCH_CONNECTIONS (50).

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pino from "pino";
import { cpuSeconds } from "./lib/cpu.mjs";
import { envNumber } from "./lib/env.mjs";
import { setUpGateway, startKeyward } from "./lib/keyward.mjs";
import { killAllNow, startProcess, stopAll } from "./lib/procs.mjs";
import { runWrk } from "./lib/wrk.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SECONDS = envNumber("BENCH_SECONDS", 10);
const ROUNDS = envNumber("BENCH_ROUNDS", 2);
const CONNECTIONS = envNumber("BENCH_CONNECTIONS", 50);

const log = (msg) => process.stderr.write(`bench: ${msg}\n`);
const fmt = (n, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");

const LABELS = {
  bare: "bare node:http proxy",
  off: "Keyward gateway, access log off",
  on: "Keyward gateway, access log on",
};

async function gateway(upstreamUrl, env) {
  const kw = await startKeyward(ROOT, { env: { KEYWARD_LOG_LEVEL: "info", KEYWARD_LOG_FORMAT: "json", ...env } });
  const secret = await setUpGateway(kw, upstreamUrl);
  return { kw, headers: { authorization: `Bearer ${secret}` } };
}

async function main() {
  const node = process.execPath;
  const up = await startProcess("upstream", node, [join(ROOT, "bench/upstream.mjs")], { ready: /listening (\d+)/ });
  const upstreamUrl = `http://127.0.0.1:${up.match[1]}`;
  const bare = await startProcess("bare proxy", node, [join(ROOT, "bench/bare-proxy.mjs")], {
    env: { UPSTREAM_PORT: up.match[1] },
    ready: /listening (\d+)/,
  });
  const off = await gateway(upstreamUrl, {});
  const on = await gateway(upstreamUrl, { KEYWARD_ACCESS_LOG: "1" });
  const scenarios = [
    { id: "bare", url: `http://127.0.0.1:${bare.match[1]}/hello`, pid: bare.child.pid, headers: {} },
    { id: "off", url: `${off.kw.url}/agents/bench/hello`, pid: off.kw.pid, headers: off.headers },
    { id: "on", url: `${on.kw.url}/agents/bench/hello`, pid: on.kw.pid, headers: on.headers },
  ];
  for (const s of scenarios) {
    const res = await fetch(s.url, { headers: s.headers });
    if (res.status !== 200) throw new Error(`${LABELS[s.id]}: expected 200, got ${res.status}`);
    await res.text();
  }

  const best = {};
  // CPU per request of every round: its median is steadier than the best round's on a busy machine.
  const cpu = { bare: [], off: [], on: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? scenarios : [...scenarios].reverse();
    for (const s of order) {
      log(`round ${round + 1}/${ROUNDS}: ${LABELS[s.id]}`);
      await runWrk(s.url, {
        seconds: Math.max(1, Math.round(SECONDS / 4)),
        connections: CONNECTIONS,
        headers: s.headers,
      });
      const cpu0 = cpuSeconds(s.pid);
      const c50 = await runWrk(s.url, { seconds: SECONDS, connections: CONNECTIONS, headers: s.headers });
      const cpu1 = cpuSeconds(s.pid);
      c50.cpuUs = cpu0 !== undefined && cpu1 !== undefined ? ((cpu1 - cpu0) * 1e6) / c50.requests : Number.NaN;
      cpu[s.id].push(c50.cpuUs);
      const c1 = await runWrk(s.url, {
        seconds: Math.max(2, Math.round(SECONDS / 2)),
        connections: 1,
        headers: s.headers,
      });
      const prev = best[s.id];
      best[s.id] = {
        c50: prev && prev.c50.rps >= c50.rps ? prev.c50 : c50,
        c1: prev && prev.c1.rps >= c1.rps ? prev.c1 : c1,
      };
    }
  }

  // The access log must really have been written by one and not the other, or the comparison is void.
  const wrote = (g) => /"msg":"request"/.test(g.kw.stderr());
  if (!wrote(on) || wrote(off)) throw new Error("access lines: expected from the 'on' server only");

  const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  console.log("\n| scenario | req/s c50 (best round) | p99 ms c50 | p99 ms c1 | CPU µs/req (median of rounds) |");
  console.log("|---|---|---|---|---|");
  for (const s of scenarios) {
    const { c50, c1 } = best[s.id];
    console.log(
      `| ${LABELS[s.id]} | ${fmt(c50.rps)} | ${fmt(c50.latencyMs.p99, 2)} | ${fmt(c1.latencyMs.p99, 3)} | ${fmt(median(cpu[s.id]), 1)} |`,
    );
  }
  const r = (a, b) => fmt(a / b, 3);
  const [cpuOn, cpuOff] = [median(cpu.on), median(cpu.off)];
  console.log(
    `\naccess log on ÷ off: req/s ${r(best.on.c50.rps, best.off.c50.rps)}, CPU µs/req ${r(cpuOn, cpuOff)} (+${fmt(cpuOn - cpuOff, 1)} µs)`,
  );
  console.log(
    `gateway ÷ bare proxy: req/s off ${r(best.off.c50.rps, best.bare.c50.rps)}, on ${r(best.on.c50.rps, best.bare.c50.rps)}`,
  );
}

/**
 * One access line in process, to /dev/null: through the access logger (no redaction pass: its
 * fields are a closed list) against the server's logger with its censored paths, median of 5.
 */
async function perLine() {
  const { createLogger } = await import(join(ROOT, "packages/server/dist/ops/logger.js"));
  const base = createLogger({ level: "info", destination: pino.destination({ dest: "/dev/null", sync: false }) });
  const line = {
    request_id: "0b9c6f5e-1b2c-4c1e-9d4a-3b2a1c0d9e8f",
    method: "GET",
    path: "/agents/bench/hello",
    status: 200,
    ms: 1.23,
    key_id: "key_awB1elIGwstCQQDo",
  };
  const loggers = { "access logger": base.child({}, { redact: [] }), "with redaction": base };
  const runs = { "access logger": [], "with redaction": [] };
  const n = 100_000;
  for (let r = 0; r < 5; r++) {
    for (const [name, logger] of Object.entries(loggers)) {
      const t0 = process.cpuUsage();
      for (let i = 0; i < n; i++) logger.info(line, "request");
      const u = process.cpuUsage(t0);
      runs[name].push((u.user + u.system) / n);
    }
  }
  const median = (v) => v.sort((a, b) => a - b)[2];
  const a = median(runs["access logger"]);
  const b = median(runs["with redaction"]);
  console.log(`
one access line, CPU µs (median of 5 × ${n}): access logger ${fmt(a, 2)}, with redaction ${fmt(b, 2)} (${fmt(b / a, 1)}×)`);
}

process.on("exit", killAllNow);
try {
  await main();
  await perLine();
} catch (err) {
  log(`failed: ${err instanceof Error ? err.message : err}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}
