// `node bench/credentials.mjs` (after `npm run build`): GET /v1/credentials for an agent with 100
// read-granted credentials, against a bare node:http server answering the same body measured in
// the same run; then the 304 and `?since=` paths, and the SSE fan-out of one rotation to many
// connected streams. Prints ratios and PASS/FAIL per target; exits 0.
//
// Env: BENCH_SECONDS (10) per wrk run, BENCH_CONNECTIONS (50), BENCH_CREDENTIALS (100),
// BENCH_SSE_CLIENTS (1000), BENCH_SSE_ROUNDS (20).

import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { envNumber } from "./lib/env.mjs";
import { manyStreamsConfig, startKeyward } from "./lib/keyward.mjs";
import { killAllNow, startProcess, stopAll } from "./lib/procs.mjs";
import { summarize } from "./lib/sequential.mjs";
import { runWrk } from "./lib/wrk.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const env = (name, fallback) => envNumber(name, fallback);
const SECONDS = env("BENCH_SECONDS", 10);
const CONNECTIONS = env("BENCH_CONNECTIONS", 50);
const CREDENTIALS = env("BENCH_CREDENTIALS", 100);
const SSE_CLIENTS = env("BENCH_SSE_CLIENTS", 1000);
const SSE_ROUNDS = env("BENCH_SSE_ROUNDS", 20);
const TARGET_RPS = 2000;
const TARGET_FANOUT_P99_MS = 1000;

const log = (msg) => process.stderr.write(`bench: ${msg}\n`);
const fmt = (n, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");

/** 100 credentials of realistic sizes (API keys, JWT-sized tokens, a PEM-sized one), all granted. */
async function setUp(kw) {
  await kw.admin("POST", "/agents", { name: "bench", upstream: "http://127.0.0.1:9" });
  const names = [];
  for (let i = 0; i < CREDENTIALS; i++) {
    const name = `cred-${String(i).padStart(3, "0")}`;
    const size = i % 10 === 0 ? 1600 : i % 3 === 0 ? 900 : 51;
    await kw.admin("PUT", `/credentials/${name}`, { value: randomBytes(size).toString("base64url").slice(0, size) });
    names.push(name);
  }
  await kw.admin("PUT", "/agents/bench/grants", { credentials: names.map((name) => ({ name, mode: "read" })) });
  const { secret } = await kw.admin("POST", "/keys", { owner: "agent:bench", scopes: [] });
  const res = await fetch(`${kw.url}/v1/credentials`, { headers: { authorization: `Bearer ${secret}` } });
  const body = await res.text();
  const parsed = JSON.parse(body);
  if (res.status !== 200 || Object.keys(parsed.credentials).length !== CREDENTIALS) {
    throw new Error(`expected ${CREDENTIALS} credentials, got ${res.status} ${body.slice(0, 200)}`);
  }
  return { secret, body, etag: res.headers.get("etag"), cursor: parsed.cursor };
}

/** The baseline: bare node:http answering the same bytes, with no auth, no lookup, no audit. */
async function startBare(body, etag) {
  const code = `
    const http = require("node:http");
    const body = Buffer.from(process.env.BODY);
    const server = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": body.length,
        "cache-control": "no-store", etag: process.env.ETAG });
      res.end(body);
    });
    server.keepAliveTimeout = 65000;
    server.listen(0, "127.0.0.1", () => process.stdout.write("listening " + server.address().port + "\\n"));
    process.on("SIGTERM", () => process.exit(0));`;
  const p = await startProcess("bare http", process.execPath, ["-e", code], {
    env: { BODY: body, ETAG: etag },
    ready: /listening (\d+)/,
  });
  return `http://127.0.0.1:${p.match[1]}/v1/credentials`;
}

async function measure(label, url, headers) {
  log(`${label}: warm-up`);
  await runWrk(url, { seconds: Math.max(1, Math.round(SECONDS / 4)), connections: CONNECTIONS, headers });
  log(`${label}: ${SECONDS} s, ${CONNECTIONS} connections`);
  return runWrk(url, { seconds: SECONDS, connections: CONNECTIONS, headers });
}

/** Opens `n` raw SSE streams; resolves when each has its `: connected` comment. */
function openStreams(url, secret, n) {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  const streams = [];
  const opened = [];
  for (let i = 0; i < n; i++) {
    opened.push(
      new Promise((resolve, reject) => {
        const req = http.get(url, { agent, headers: { authorization: `Bearer ${secret}` } }, (res) => {
          if (res.statusCode !== 200) {
            // A refused stream (429 past a cap) never says `: connected`: fail instead of waiting.
            res.resume();
            reject(new Error(`stream ${i}: ${res.statusCode} from ${url}`));
            return;
          }
          res.setEncoding("utf8");
          const s = { res, req, buffer: "", waiting: undefined };
          res.on("data", (chunk) => {
            s.buffer += chunk;
            if (s.buffer.includes(": connected")) resolve(s);
            if (s.waiting && s.buffer.includes(s.waiting.marker)) {
              const w = s.waiting;
              s.waiting = undefined;
              w.done(performance.now());
            }
          });
        });
        req.on("error", reject);
        streams.push(req);
      }),
    );
  }
  return Promise.all(opened);
}

/** From the admin PUT returning to every stream holding the `changed` event of that version. */
async function fanout(kw, secret) {
  log(`SSE: opening ${SSE_CLIENTS} streams`);
  const streams = await openStreams(`${kw.url}/v1/credentials/events`, secret, SSE_CLIENTS);
  const lastArrivals = [];
  const allArrivals = [];
  for (let round = 0; round < SSE_ROUNDS; round++) {
    const version = round + 2;
    const marker = `"version":${version}}`;
    const arrived = streams.map(
      (s) =>
        new Promise((done) => {
          if (s.buffer.includes(marker)) return done(performance.now());
          s.waiting = { marker, done };
        }),
    );
    await kw.admin("PUT", "/credentials/cred-000", { value: `rotated-${version}-${randomBytes(8).toString("hex")}` });
    const t0 = performance.now();
    const times = (await Promise.all(arrived)).map((t) => Math.max(0, t - t0));
    allArrivals.push(...times);
    lastArrivals.push(Math.max(...times));
    for (const s of streams) s.buffer = "";
  }
  for (const s of streams) s.req.destroy();
  return { perClient: summarize(allArrivals), lastClient: summarize(lastArrivals) };
}

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const line = (r) => `| ${r.map((c, i) => String(c).padEnd(widths[i])).join(" | ")} |`;
  return [line(rows[0]), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.slice(1).map(line)].join("\n");
}

async function main() {
  if (spawnSync("wrk", ["-v"]).error) throw new Error("wrk is not installed (apt-get install -y wrk)");
  log(`${cpus().length} CPUs, node ${process.version}; ${CREDENTIALS} credentials, ${SECONDS} s per run`);
  const kw = await startKeyward(ROOT, { config: manyStreamsConfig(SSE_CLIENTS) });
  const { secret, body, etag, cursor } = await setUp(kw);
  const bareUrl = await startBare(body, etag);
  const auth = { authorization: `Bearer ${secret}` };

  const bare = await measure("bare node:http, same body", bareUrl, {});
  const full = await measure("GET /v1/credentials", `${kw.url}/v1/credentials`, auth);
  const notModified = await measure("GET /v1/credentials, If-None-Match (304)", `${kw.url}/v1/credentials`, {
    ...auth,
    "if-none-match": etag,
  });
  const delta = await measure("GET /v1/credentials?since=<cursor>", `${kw.url}/v1/credentials?since=${cursor}`, auth);
  const fan = await fanout(kw, secret);

  const rows = [["scenario", "req/s", "p50 ms", "p99 ms", "÷ bare"]];
  for (const [label, r] of [
    [`bare node:http (same ${Buffer.byteLength(body)}-byte body)`, bare],
    [`GET /v1/credentials (${CREDENTIALS} values)`, full],
    ["… with If-None-Match → 304", notModified],
    ["… ?since=<cursor> (nothing new)", delta],
  ]) {
    rows.push([label, fmt(r.rps), fmt(r.latencyMs.p50, 3), fmt(r.latencyMs.p99, 3), fmt(r.rps / bare.rps, 2)]);
  }
  console.log(`\n${table(rows)}`);
  console.log(
    `\nSSE fan-out, ${SSE_CLIENTS} streams × ${SSE_ROUNDS} rotations (ms from the PUT's response to the event):`,
  );
  console.log(
    table([
      ["", "p50", "p99", "max"],
      ["each stream", fmt(fan.perClient.p50, 1), fmt(fan.perClient.p99, 1), fmt(fan.perClient.max, 1)],
      ["last stream of a rotation", fmt(fan.lastClient.p50, 1), fmt(fan.lastClient.p99, 1), fmt(fan.lastClient.max, 1)],
    ]),
  );

  const targets = [
    [
      `GET /v1/credentials, ${CREDENTIALS} credentials`,
      `≥ ${TARGET_RPS} req/s`,
      `${fmt(full.rps)} req/s`,
      full.rps >= TARGET_RPS,
    ],
    [
      `SSE fan-out to ${SSE_CLIENTS} streams, p99 of the last stream`,
      `≤ ${TARGET_FANOUT_P99_MS} ms`,
      `${fmt(fan.lastClient.p99, 1)} ms`,
      fan.lastClient.p99 <= TARGET_FANOUT_P99_MS,
    ],
  ];
  console.log(
    `\nSummary\n${table([["target", "goal", "measured", "result"], ...targets.map(([n, g, m, ok]) => [n, g, m, ok ? "PASS" : "FAIL"])])}`,
  );
}

process.on("exit", killAllNow);
try {
  await main();
} catch (err) {
  log(`failed: ${err instanceof Error ? err.message : err}`);
} finally {
  await stopAll();
}
