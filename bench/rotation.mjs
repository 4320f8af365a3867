// Rotation propagation: from the admin `PUT /admin/v1/credentials/{name}` returning to every one of
// 1,000 connected @keyward/sdk clients holding the new value. Keyward runs as a user runs it
// (`keyward serve` from packages/server/dist); the clients live in a few worker processes.
//
// Baseline, measured in the same run by the same workers: a bare node:http SSE server pushing one
// line to as many plain SSE connections (the floor of any push: no store, no audit, no fetch).
//
// Target (issue 4): p99 ≤ 1 s for "all clients hold the new value". Reported per rotation (the
// time until the last client has it; p99 over rotations, with 20 rotations that is the worst one)
// and per client (every client × rotation sample).
//
// The first pushes after the clients connected are warm-up (JIT, connection pools on both sides):
// not in the statistics; the very first is reported on its own as the cold case.
//
// Env: BENCH_ROTATION_CLIENTS (1000), BENCH_ROTATIONS (20), BENCH_ROTATION_WARMUP (2),
// BENCH_ROTATION_WORKERS (the number of cores, at most 4).
// Run after `npm run build`.
import { fork } from "node:child_process";
import { createServer } from "node:http";
import { cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { manyStreamsConfig, startKeyward } from "./lib/keyward.mjs";
import { killAllNow, stopAll, track } from "./lib/procs.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const now = () => performance.timeOrigin + performance.now();
const log = (msg) => process.stderr.write(`bench(rotation): ${msg}\n`);

// ---------------------------------------------------------------- worker: holds the clients

async function worker() {
  const { Keyward } = await import(pathToFileURL(join(ROOT, "packages/sdk/dist/index.js")).href);
  const closers = [];
  /** value → receipt times; reported once every client of this worker has that value. */
  const seen = new Map();
  let count = 0;
  const record = (value) => {
    const t = now();
    const times = seen.get(value) ?? [];
    seen.set(value, times);
    times.push(t);
    if (times.length === count) process.send({ type: "done", value, times });
  };

  async function connectSdk({ url, token, name }, i) {
    const kw = await Keyward.connect({ url, token });
    kw.on("change", (e) => {
      if (e.name === name) record(kw.get(name));
    });
    kw.on("error", (err) => {
      if (err.code !== "closed") process.stderr.write(`worker: client ${i}: ${err.code}: ${err.message}\n`);
    });
    closers.push(() => kw.close());
  }

  async function connectRaw({ url }) {
    const ctrl = new AbortController();
    const res = await fetch(url, { signal: ctrl.signal, headers: { accept: "text/event-stream" } });
    closers.push(async () => ctrl.abort());
    (async () => {
      const decoder = new TextDecoder();
      let buffer = "";
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk, { stream: true });
        let end = buffer.indexOf("\n\n");
        while (end !== -1) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (line.startsWith("data: ")) record(line.slice(6));
          end = buffer.indexOf("\n\n");
        }
      }
    })().catch(() => {});
  }

  process.on("message", async (msg) => {
    if (msg.type === "connect") {
      count = msg.count;
      const connect = msg.mode === "sdk" ? connectSdk : connectRaw;
      // In batches, as a fleet of agents would start: not a thousand connects in one instant.
      try {
        for (let i = 0; i < msg.count; i += 50) {
          await Promise.all(Array.from({ length: Math.min(50, msg.count - i) }, (_, j) => connect(msg.target, i + j)));
        }
      } catch (err) {
        process.stderr.write(`worker: connect failed: ${err.code ?? ""} ${err.message}\n`);
        process.exit(1);
      }
      process.send({ type: "ready" });
    } else if (msg.type === "close") {
      await Promise.all(closers.map((c) => c()));
      process.disconnect();
    }
  });
}

// ---------------------------------------------------------------- main

function envNumber(name, fallback, min = 1) {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, got "${v}"`);
  return n;
}

async function mainWithCleanup() {
  process.on("exit", killAllNow);
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.once(signal, () => stopAll(2_000).finally(() => process.exit(130)));
  }
  try {
    await main();
  } catch (err) {
    log(`failed: ${err instanceof Error ? err.stack : err}`);
    process.exitCode = 1;
  } finally {
    await stopAll();
  }
}

/** Workers, each holding its share of the clients; `wait(value)` resolves with every receipt time. */
async function startWorkers(n, clients, mode, target) {
  const workers = [];
  const waiting = new Map();
  const arrived = new Map();
  for (let w = 0; w < n; w++) {
    const child = track(`worker ${w}`, fork(SELF, ["worker"], { stdio: ["ignore", "inherit", "inherit", "ipc"] }));
    const share = Math.floor(clients / n) + (w < clients % n ? 1 : 0);
    const ready = new Promise((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`worker ${w} exited (${code})`)));
      child.on("message", (msg) => {
        if (msg.type === "ready") resolve();
        if (msg.type !== "done") return;
        const entry = arrived.get(msg.value) ?? { workers: 0, times: [] };
        entry.workers++;
        entry.times.push(...msg.times);
        arrived.set(msg.value, entry);
        if (entry.workers === n) waiting.get(msg.value)?.(entry.times);
      });
    });
    child.send({ type: "connect", mode, target, count: share });
    workers.push({ child, ready });
  }
  await Promise.all(workers.map((w) => w.ready));
  return {
    /** Resolves with the receipt times of `value` at every client, or undefined after `timeoutMs`. */
    wait(value, timeoutMs) {
      const done = arrived.get(value);
      if (done?.workers === n) return Promise.resolve(done.times);
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(undefined), timeoutMs);
        waiting.set(value, (times) => {
          clearTimeout(timer);
          resolve(times);
        });
      });
    },
    async close() {
      await Promise.all(
        workers.map(
          ({ child }) =>
            new Promise((resolve) => {
              child.once("exit", resolve);
              child.send({ type: "close" });
            }),
        ),
      );
    },
  };
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];

/**
 * Runs `warmup` + `rotations` pushes; `push(value)` makes `value` current and resolves with the
 * time to measure from. The warm-up pushes are not in the statistics (JIT, connection pools); the
 * very first one is reported on its own as the cold case.
 */
async function measure(label, workers, { rotations, warmup }, clients, push) {
  const allClients = [];
  const perClient = [];
  let cold;
  let missed = 0;
  for (let k = 1 - warmup; k <= rotations; k++) {
    const value = k <= 0 ? `warmup${k + warmup}` : `v${k}`;
    const arrived = workers.wait(value, 15_000);
    const t0 = await push(value);
    const times = await arrived;
    const all = times === undefined ? Number.POSITIVE_INFINITY : Math.max(...times.map((t) => t - t0));
    if (cold === undefined) cold = all;
    if (times === undefined) log(`${label}: ${value}: not every client had it after 15 s`);
    if (k > 0) {
      if (times === undefined) missed++;
      else perClient.push(...times.map((t) => t - t0));
      allClients.push(all);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  log(`${label}: ms until all clients had it, per rotation: ${allClients.map((x) => x.toFixed(0)).join(" ")}`);
  allClients.sort((a, b) => a - b);
  perClient.sort((a, b) => a - b);
  log(`${label}: ${rotations} rotations × ${clients} clients done${missed ? ` (${missed} incomplete)` : ""}`);
  return {
    cold,
    all: { p50: quantile(allClients, 0.5), p99: quantile(allClients, 0.99), max: allClients.at(-1) },
    client: { p50: quantile(perClient, 0.5), p99: quantile(perClient, 0.99), max: perClient.at(-1) },
  };
}

async function baseline(clients, runs, nWorkers) {
  const streams = new Set();
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
    res.write(": connected\n\n");
    streams.add(res);
    res.once("close", () => streams.delete(res));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}/events`;
  const workers = await startWorkers(nWorkers, clients, "raw", { url });
  const result = await measure("baseline", workers, runs, clients, async (value) => {
    const t0 = now();
    for (const res of streams) res.write(`data: ${value}\n\n`);
    return t0;
  });
  await workers.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  return result;
}

async function keyward(clients, runs, nWorkers) {
  const kw = await startKeyward(ROOT, { config: manyStreamsConfig(clients) });
  const name = "rotating";
  await kw.admin("POST", "/agents", { name: "rotation", upstream: "http://127.0.0.1:9" });
  await kw.admin("PUT", `/credentials/${name}`, { value: "v0" });
  await kw.admin("PUT", "/agents/rotation/grants", { credentials: [{ name, mode: "read" }] });
  const { secret } = await kw.admin("POST", "/keys", { owner: "agent:rotation", scopes: [] });
  log(`connecting ${clients} SDK clients in ${nWorkers} processes`);
  const workers = await startWorkers(nWorkers, clients, "sdk", { url: kw.url, token: secret, name });
  const result = await measure("keyward", workers, runs, clients, async (value) => {
    await kw.admin("PUT", `/credentials/${name}`, { value });
    return now(); // from the PUT returning
  });
  await workers.close();
  return result;
}

async function main() {
  const clients = envNumber("BENCH_ROTATION_CLIENTS", 1000);
  const rotations = envNumber("BENCH_ROTATIONS", 20);
  const warmup = envNumber("BENCH_ROTATION_WARMUP", 2, 0);
  // More client processes than cores only adds contention with the server on a small machine.
  const nWorkers = Math.min(envNumber("BENCH_ROTATION_WORKERS", Math.min(4, cpus().length)), clients);

  log(`baseline: bare SSE push to ${clients} connections`);
  const base = await baseline(clients, { rotations, warmup }, nWorkers);
  const kw = await keyward(clients, { rotations, warmup }, nWorkers);

  const ms = (x) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : "never");
  console.log(
    `\nRotation propagation, ${clients} clients, ${rotations} rotations after ${warmup} warm-up (${nWorkers} client processes)`,
  );
  console.log("| measure | bare SSE push (baseline) | Keyward: PUT → SDK holds value | ratio |");
  console.log("|---|---|---|---|");
  const row = (label, b, k) => console.log(`| ${label} | ${ms(b)} | ${ms(k)} | ${(k / b).toFixed(1)} × |`);
  row("all clients hold it, p50 over rotations", base.all.p50, kw.all.p50);
  row("all clients hold it, p99 over rotations", base.all.p99, kw.all.p99);
  row("per client, p50", base.client.p50, kw.client.p50);
  row("per client, p99", base.client.p99, kw.client.p99);
  row("per client, max", base.client.max, kw.client.max);
  row("(info) cold: the first push after connecting, all clients", base.cold, kw.cold);

  const targets = [
    ["rotation reaches all clients, p99 over rotations", "≤ 1000 ms", kw.all.p99, kw.all.p99 <= 1000],
    ["rotation reaches a client, p99 over clients × rotations", "≤ 1000 ms", kw.client.p99, kw.client.p99 <= 1000],
  ];
  console.log("\n| target | goal | measured | result |");
  console.log("|---|---|---|---|");
  for (const [label, goal, value, pass] of targets) {
    console.log(`| ${label} | ${goal} | ${ms(value)} | ${pass ? "PASS" : "FAIL"} |`);
  }
}

if (process.argv[2] === "worker") await worker();
else await mainWithCleanup();
