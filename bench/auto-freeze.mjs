// Auto-freeze across replicas (issue 13): three `keyward serve` processes on one PostgreSQL
// schema with a freeze rule (denial_spike, 50 denials in 60 s, action: freeze). In each of 20
// trials a fresh key is refused 50 times, round robin over the replicas (the 50th refusal is the
// crossing request), then every replica is polled with the key until it answers 401. The polls
// go to an agent the key may not call, so 403 scope_denied turns into key_frozen's 401: allowed
// polls would be the key's traffic too and dilute the rule's denial ratio. Reported: the time
// from the crossing request's answer to the key being refused on every replica; target p99 ≤ 2 s.
// Baseline in the same run: one /v1/verify round trip on a cached key (what a poll costs).
//
// Env: KEYWARD_TEST_DATABASE_URL (required, else SKIP), BENCH_FREEZE_TRIALS (20).
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { killAllNow, removeLater, startProcess, stopAll } from "./lib/procs.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "packages/server/dist/cli/main.js");
const PG = process.env.KEYWARD_TEST_DATABASE_URL;
const TRIALS = Number(process.env.BENCH_FREEZE_TRIALS ?? 20);
const THRESHOLD = 50;
const TARGET_MS = 2000;
const DEADLINE_MS = 10_000;
const ADMIN = `bench-admin-${randomBytes(16).toString("hex")}`;
const MASTER = randomBytes(32).toString("base64");

const log = (msg) => process.stderr.write(`bench/auto-freeze: ${msg}\n`);
process.on("exit", killAllNow);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

function quantile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}
const fmt = (ms) => (Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : "n/a");

async function startReplicas(databaseUrl) {
  const dir = removeLater(mkdtempSync(join(tmpdir(), "keyward-bench-freeze-")));
  const configFile = join(dir, "keyward.yaml");
  writeFileSync(
    configFile,
    `anomalies:\n  rules:\n    - { name: probe-freeze, detector: denial_spike, threshold: ${THRESHOLD}, window_s: 60, action: freeze }\n`,
  );
  return Promise.all(
    ["a", "b", "c"].map(async (name) => {
      const dataDir = removeLater(mkdtempSync(join(tmpdir(), "keyward-bench-replica-")));
      const { match } = await startProcess(
        `replica ${name}`,
        process.execPath,
        [BIN, "serve", "--port", "0", "--data-dir", dataDir, "--config", configFile, "--workers", "1"],
        {
          env: {
            KEYWARD_ADMIN_TOKEN: ADMIN,
            KEYWARD_MASTER_KEY: MASTER,
            KEYWARD_LOG_LEVEL: "warn",
            KEYWARD_REDIS_URL: "",
            KEYWARD_DATABASE_URL: databaseUrl,
          },
          ready: /listening on (http:\/\/\S+)/,
        },
      );
      return { name, url: match[1] };
    }),
  );
}

async function admin(replica, method, path, body) {
  const res = await fetch(`${replica.url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => undefined);
  if (!res.ok) throw new Error(`admin ${method} ${path} → ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Forward-auth: the gateway's checks for `agent`, without an upstream. */
async function verify(replica, secret, agent) {
  const res = await fetch(`${replica.url}/v1/verify`, {
    headers: { "x-api-key": secret, "x-forwarded-uri": `/agents/${agent}/x` },
  });
  await res.arrayBuffer();
  return res.status;
}

async function main() {
  if (!PG) {
    console.log("bench/auto-freeze: SKIP (KEYWARD_TEST_DATABASE_URL is not set)");
    return;
  }
  const client = new pg.Client({ connectionString: PG });
  await client.connect();
  const schema = `kwb_freeze_${randomBytes(5).toString("hex")}`;
  await client.query(`CREATE SCHEMA ${schema}`);
  const url = new URL(PG);
  url.searchParams.set("options", `-c search_path=${schema}`);
  try {
    const replicas = await startReplicas(url.toString());
    const [a] = replicas;
    await admin(a, "POST", "/agents", { name: "bench", upstream: "http://127.0.0.1:9" });
    await admin(a, "POST", "/consumers", { name: "bench" });

    const baseline = [];
    const probe = await admin(a, "POST", "/keys", { owner: "consumer:bench", scopes: ["agent:bench"] });
    for (let i = 0; i < 300; i++) {
      const t = performance.now();
      if ((await verify(replicas[i % 3], probe.secret, "bench")) !== 200) throw new Error("baseline key refused");
      baseline.push(performance.now() - t);
    }

    const times = [];
    let missed = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      // The rule counts in 60 s windows: start a trial where its 50 refusals fit in one window.
      const into = Date.now() % 60_000;
      if (into > 55_000) await new Promise((r) => setTimeout(r, 60_000 - into + 50));
      const key = await admin(a, "POST", "/keys", { owner: "consumer:bench", scopes: ["agent:bench"] });
      for (const r of replicas) if ((await verify(r, key.secret, "bench")) !== 200) throw new Error("not admitted");
      for (let i = 0; i < THRESHOLD; i++) {
        if ((await verify(replicas[i % 3], key.secret, "elsewhere")) !== 403) throw new Error("denial not 403");
      }
      const t0 = performance.now();
      const each = await Promise.all(
        replicas.map(async (r) => {
          for (;;) {
            // Polled where the key is refused (403 scope_denied) until it is refused as frozen
            // (401): allowed polls would count as the key's traffic and dilute its denial ratio.
            const status = await verify(r, key.secret, "elsewhere");
            const dt = performance.now() - t0;
            if (status === 401) return dt;
            if (dt > DEADLINE_MS) return Number.POSITIVE_INFINITY;
            await new Promise((res) => setTimeout(res, 2));
          }
        }),
      );
      if (each.some((t) => !Number.isFinite(t))) missed++;
      times.push(Math.max(...each));
      log(`trial ${trial + 1}/${TRIALS}: refused everywhere after ${fmt(Math.max(...each))}`);
    }
    await stopAll();
    const sorted = [...times].sort((x, y) => x - y);
    const base = [...baseline].sort((x, y) => x - y);
    const p99 = quantile(sorted, 0.99);
    const pass = p99 <= TARGET_MS && missed === 0;
    console.log(`\nauto-freeze across 3 replicas on PostgreSQL (${TRIALS} trials, rule: ${THRESHOLD} denials in 60 s)`);
    console.log(
      `  baseline: one /v1/verify round trip, cached key      p50 ${fmt(quantile(base, 0.5))}  p99 ${fmt(quantile(base, 0.99))}`,
    );
    console.log(
      `  refused on every replica after the crossing request  p50 ${fmt(quantile(sorted, 0.5))}  p99 ${fmt(p99)}  max ${fmt(sorted.at(-1))}  (p99 = ${(p99 / quantile(base, 0.5)).toFixed(0)}× a round trip)`,
    );
    console.log(`  not refused within ${DEADLINE_MS} ms: ${missed}`);
    console.log(`  ${pass ? "PASS" : "FAIL"}  auto-freeze p99 ${fmt(p99)} (target ≤ ${TARGET_MS} ms)`);
    if (!pass) process.exitCode = 1;
  } finally {
    await stopAll();
    await client.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
    await client.end();
  }
}

await main();
