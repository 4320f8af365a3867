// The summary: every target with its measured value and PASS/FAIL, printed and saved as JSON.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

const fmt = (n, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");

/** Targets from the measured numbers; a target whose inputs are missing is SKIP, never PASS. */
export function evaluate({ best, cache, checks, inproc }) {
  const g = best.gateway;
  const targets = [];
  const add = (name, goal, value, unit, pass) =>
    targets.push({ name, goal, value, unit, result: value === undefined ? "SKIP" : pass ? "PASS" : "FAIL" });

  const rNginx = best.nginx ? g.c50.rps / best.nginx.c50.rps : undefined;
  add("throughput gateway ÷ nginx", "≥ 0.50", rNginx, "×", rNginx >= 0.5);
  const rBare = g.c50.rps / best.bare.c50.rps;
  add("throughput gateway ÷ bare node proxy", "≥ 0.90", rBare, "×", rBare >= 0.9);
  if (best.bareUndici) {
    // Information, not a target of the issue: the checks' cost on the gateway's own data path.
    const rUndici = g.c50.rps / best.bareUndici.c50.rps;
    targets.push({
      name: "(info) throughput gateway ÷ bare undici proxy",
      goal: "—",
      value: rUndici,
      unit: "×",
      result: "INFO",
    });
  }
  if (best.gatewayJwt) {
    const rJwt = best.gatewayJwt.c50.rps / g.c50.rps;
    add("throughput gateway with access token ÷ with API key", "≥ 0.90", rJwt, "×", rJwt >= 0.9);
  }
  const added50 = g.c50.latencyMs.p99 - best.bare.c50.latencyMs.p99;
  add(`added p99 gateway − bare (${g.c50.connections} connections)`, "≤ 0.50 ms", added50, "ms", added50 <= 0.5);
  const added1 = g.c1.latencyMs.p99 - best.bare.c1.latencyMs.p99;
  add("added p99 gateway − bare (1 connection)", "≤ 0.50 ms", added1, "ms", added1 <= 0.5);
  if (checks?.p99UpperBoundMs !== undefined) {
    add(
      "p99 of the checks themselves (keyward_gateway_check_seconds, bucket bound)",
      "≤ 0.50 ms",
      checks.p99UpperBoundMs,
      "ms",
      checks.p99UpperBoundMs <= 0.5,
    );
  }
  if (inproc) {
    add(
      `verification p99, cache miss, in process (${cache.keys.toLocaleString("en")} keys)`,
      "≤ 2.00 ms",
      inproc.miss.p99,
      "ms",
      inproc.miss.p99 <= 2,
    );
    add("verification p99, cache hit, in process", "≤ 0.05 ms", inproc.hit.p99, "ms", inproc.hit.p99 <= 0.05);
  }
  if (cache) {
    add(
      `cache-miss p99 over HTTP, sequential /v1/verify (${cache.keys.toLocaleString("en")} keys)`,
      "≤ 2.00 ms",
      cache.miss.p99,
      "ms",
      cache.miss.p99 <= 2,
    );
    const limit = cache.hitBefore.p99 * 1.2 + 0.05;
    add(
      "cache-hit p99 unchanged (≤ before × 1.2 + 0.05 ms)",
      `≤ ${fmt(limit)} ms`,
      cache.hitAfter.p99,
      "ms",
      cache.hitAfter.p99 <= limit,
    );
  }
  return targets;
}

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const line = (r) => `| ${r.map((c, i) => String(c).padEnd(widths[i])).join(" | ")} |`;
  return [line(rows[0]), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.slice(1).map(line)].join("\n");
}

export function printScenarios(best, labels) {
  const c = best.gateway.c50.connections;
  const rows = [["scenario", `req/s (c${c})`, "p50 ms", "p99 ms", "CPU µs/req", "req/s (c1)", "p99 ms (c1)"]];
  for (const [id, r] of Object.entries(best)) {
    rows.push([
      labels[id],
      fmt(r.c50.rps, 0),
      fmt(r.c50.latencyMs.p50, 3),
      fmt(r.c50.latencyMs.p99, 3),
      fmt(r.c50.cpuUsPerRequest, 1),
      fmt(r.c1.rps, 0),
      fmt(r.c1.latencyMs.p99, 3),
    ]);
  }
  console.log(`\n${table(rows)}`);
  console.log("CPU µs/req: CPU time of the process under test (upstream alone, or the proxy without the upstream)");
  const g = best.gateway.c50.cpuUsPerRequest;
  for (const id of ["bare", "nginx"]) {
    const base = best[id]?.c50.cpuUsPerRequest;
    if (g && base) console.log(`CPU per request, gateway ÷ ${labels[id]}: ${fmt(g / base)} ×`);
  }
}

export function printCache(cache) {
  const rows = [["lookup (sequential, /v1/verify)", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"]];
  const row = (label, s) => rows.push([label, s.n, fmt(s.p50, 3), fmt(s.p90, 3), fmt(s.p99, 3), fmt(s.max, 3)]);
  row("hit, 1 key in store", cache.hitBefore);
  row(`miss, ${cache.keys.toLocaleString("en")} keys in store`, cache.miss);
  row(`hit, ${cache.keys.toLocaleString("en")} keys in store`, cache.hitAfter);
  console.log(`\n${table(rows)}`);
}

export function printTargets(targets) {
  const rows = [["target", "goal", "measured", "result"]];
  for (const t of targets)
    rows.push([t.name, t.goal, t.value === undefined ? "n/a" : `${fmt(t.value)} ${t.unit}`, t.result]);
  console.log(`\nSummary\n${table(rows)}`);
}

export function writeJson(path, data) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
}
