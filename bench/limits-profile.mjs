// Where the CPU of a leased check goes (issue 14 item 2): two profiled gateways on the same key
// and upstream — limits in memory and leased from Redis — driven alike by wrk, then the top frames
// of each by self time. `node bench/limits-profile.mjs <dir>` after `npm run build`; needs
// redis-server and wrk. Env: BENCH_SECONDS (15), BENCH_CONNECTIONS (50).
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { topFrames } from "./gateway-profile-top.mjs";
import { cpuSeconds } from "./lib/cpu.mjs";
import { setUpGateway, startKeyward } from "./lib/keyward.mjs";
import { freePort } from "./lib/net.mjs";
import { startProcess, stopAll } from "./lib/procs.mjs";
import { runWrk } from "./lib/wrk.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUT = resolve(process.argv[2] ?? "bench-profiles");
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const log = (msg) => process.stderr.write(`bench(limits-profile): ${msg}\n`);

async function main() {
  const up = await startProcess("upstream", process.execPath, [join(ROOT, "bench/upstream.mjs")], {
    ready: /listening (\d+)/,
  });
  const upstreamUrl = `http://127.0.0.1:${up.match[1]}`;
  const redisPort = await freePort();
  await startProcess(
    "redis-server",
    "redis-server",
    ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { ready: /Ready to accept connections/ },
  );
  const results = [];
  for (const [id, env] of [
    ["memory", {}],
    ["leased", { KEYWARD_REDIS_URL: `redis://127.0.0.1:${redisPort}` }],
  ]) {
    const dir = join(OUT, id);
    mkdirSync(dir, { recursive: true });
    const kw = await startKeyward(ROOT, { cpuProfDir: dir, env });
    const secret = await setUpGateway(kw, upstreamUrl);
    const url = `${kw.url}/agents/bench/hello`;
    const headers = { authorization: `Bearer ${secret}` };
    await runWrk(url, { seconds: 3, connections: CONNECTIONS, headers });
    const cpu0 = cpuSeconds(kw.pid);
    const r = await runWrk(url, { seconds: SECONDS, connections: CONNECTIONS, headers });
    const cpuUs = ((cpuSeconds(kw.pid) - cpu0) * 1e6) / r.requests;
    log(`${id}: ${r.rps.toFixed(0)} req/s, ${cpuUs.toFixed(1)} CPU µs/req (profiled)`);
    results.push({ id, dir, rps: r.rps, cpuUs });
  }
  // Each profile is written when its process exits (the first idles while the second runs).
  await stopAll();
  // Per frame: its share of the busy samples × the process's CPU per request = µs per request.
  const perReq = results.map(({ id, dir, cpuUs }) => {
    const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
    if (!file || !existsSync(join(dir, file))) throw new Error(`${id}: no profile written in ${dir}`);
    const { rows } = topFrames(JSON.parse(readFileSync(join(dir, file), "utf8")), 10_000);
    return new Map(rows.map((r) => [r.frame.trim(), r.share * cpuUs]));
  });
  const [memory, leased] = perReq;
  const frames = [...new Set([...memory.keys(), ...leased.keys()])]
    .map((f) => ({ f, m: memory.get(f) ?? 0, l: leased.get(f) ?? 0 }))
    .sort((a, b) => Math.abs(b.l - b.m) - Math.abs(a.l - a.m))
    .slice(0, 30);
  for (const r of results)
    console.log(`${r.id}: ${r.rps.toFixed(0)} req/s, ${r.cpuUs.toFixed(1)} CPU µs/req while profiled`);
  console.log("\n| µs/req memory | µs/req leased | leased − memory | function (file:line) |\n|---:|---:|---:|---|");
  for (const { f, m, l } of frames)
    console.log(`| ${m.toFixed(2)} | ${l.toFixed(2)} | ${(l - m).toFixed(2)} | \`${f}\` |`);
}

main().catch(async (err) => {
  console.error(err);
  await stopAll();
  process.exitCode = 1;
});
