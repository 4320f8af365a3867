// Revocation propagation across replicas (issue 5): three `keyward serve` processes on one
// PostgreSQL schema, 1,000 revocations, each made on one replica (in turn), and the time from the
// admin call returning to the key being refused on every replica. Run once with Redis pub/sub and
// once with PostgreSQL LISTEN/NOTIFY only. Targets: p99 ≤ 100 ms (Redis), ≤ 250 ms (NOTIFY).
//
// How refusal is observed: each replica is polled with the revoked key on GET /v1/verify (the
// gateway's checks without an upstream), a request every millisecond, until it answers 401. Each
// key is verified on every replica first, so a refusal proves an invalidation, not a cold miss.
// Two baselines are measured in the same run: one verify round trip on a cached key (what a poll
// costs), and one on a key the replica has never seen (a cache miss: one store read, the least a
// replica must do after an invalidation before it can refuse).
//
// Env: KEYWARD_TEST_DATABASE_URL (required, else SKIP), KEYWARD_TEST_REDIS_URL (else the Redis
// run is skipped), BENCH_REVOCATIONS (1000), BENCH_RECONCILE_MS (1000, Keyward's default).
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { generateSecret } from "../packages/server/dist/crypto/secret-format.js";
import { killAllNow, removeLater, startProcess, stopAll } from "./lib/procs.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "packages/server/dist/cli/main.js");
const PG = process.env.KEYWARD_TEST_DATABASE_URL;
const REDIS = process.env.KEYWARD_TEST_REDIS_URL;
const N = Number(process.env.BENCH_REVOCATIONS ?? 1000);
const RECONCILE_MS = String(process.env.BENCH_RECONCILE_MS ?? 1000);
const DEADLINE_MS = 5000;
const ADMIN = `bench-admin-${randomBytes(16).toString("hex")}`;
const MASTER = randomBytes(32).toString("base64");

const log = (msg) => process.stderr.write(`bench/replicas: ${msg}\n`);
process.on("exit", killAllNow);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

function quantile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}
const fmt = (ms) => (Number.isFinite(ms) ? `${ms.toFixed(2)} ms` : "n/a");

async function startReplicas(env) {
  return Promise.all(
    ["a", "b", "c"].map(async (name) => {
      const dataDir = removeLater(mkdtempSync(join(tmpdir(), "keyward-bench-replica-")));
      const { match } = await startProcess(
        `replica ${name}`,
        process.execPath,
        [BIN, "serve", "--port", "0", "--data-dir", dataDir, "--workers", "1"],
        {
          env: {
            KEYWARD_ADMIN_TOKEN: ADMIN,
            KEYWARD_MASTER_KEY: MASTER,
            KEYWARD_LOG_LEVEL: "warn",
            KEYWARD_RECONCILE_INTERVAL_MS: RECONCILE_MS,
            KEYWARD_REDIS_URL: "",
            ...env,
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
  return { json, pending: res.headers.get("keyward-propagation") === "pending" };
}

async function verify(replica, secret) {
  const res = await fetch(`${replica.url}/v1/verify`, {
    headers: { "x-api-key": secret, "x-forwarded-uri": "/agents/bench/x" },
  });
  await res.arrayBuffer();
  return res.status;
}

async function withSchema(fn) {
  const client = new pg.Client({ connectionString: PG });
  await client.connect();
  const schema = `kwb_rep_${randomBytes(5).toString("hex")}`;
  await client.query(`CREATE SCHEMA ${schema}`);
  const url = new URL(PG);
  url.searchParams.set("options", `-c search_path=${schema}`);
  try {
    return await fn(url.toString());
  } finally {
    await client.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
    await client.end();
  }
}

async function run(label, env) {
  return withSchema(async (databaseUrl) => {
    log(`${label}: starting 3 replicas`);
    const replicas = await startReplicas({ ...env, KEYWARD_DATABASE_URL: databaseUrl });
    const [a] = replicas;
    await admin(a, "POST", "/agents", { name: "bench", upstream: "http://127.0.0.1:9" });
    await admin(a, "POST", "/consumers", { name: "bench" });
    log(`${label}: creating ${N} keys`);
    const keys = [];
    for (let i = 0; i < N; i += 20) {
      const batch = Array.from({ length: Math.min(20, N - i) }, () =>
        admin(a, "POST", "/keys", { owner: "consumer:bench", scopes: ["agent:bench"] }),
      );
      for (const { json } of await Promise.all(batch)) keys.push({ id: json.key.id, secret: json.secret });
    }

    // Baseline: one verify round trip on a cached key.
    const baseline = [];
    for (let i = 0; i < 500; i++) {
      const r = replicas[i % 3];
      const t = performance.now();
      if ((await verify(r, keys[0].secret)) !== 200) throw new Error("baseline key refused");
      baseline.push(performance.now() - t);
    }

    const miss = [];
    for (let i = 0; i < 500; i++) {
      const r = replicas[i % 3];
      const t = performance.now();
      if ((await verify(r, generateSecret("kwk"))) !== 401) throw new Error("unknown key admitted");
      miss.push(performance.now() - t);
    }

    log(`${label}: ${N} revocations`);
    const all = [];
    const others = [];
    let pending = 0;
    let missed = 0;
    for (let i = 0; i < N; i++) {
      const key = keys[i];
      for (const r of replicas) {
        if ((await verify(r, key.secret)) !== 200) throw new Error(`key ${key.id} not admitted on ${r.name} before`);
      }
      const revoker = replicas[i % 3];
      const res = await admin(revoker, "POST", `/keys/${key.id}/revoke`);
      const t0 = performance.now();
      if (res.pending) pending++;
      const times = await Promise.all(
        replicas.map(async (r) => {
          for (;;) {
            const status = await verify(r, key.secret);
            const dt = performance.now() - t0;
            if (status === 401) return dt;
            if (dt > DEADLINE_MS) return Number.POSITIVE_INFINITY;
            // A millisecond between polls: on a small machine, three tight polling loops would
            // take the CPU the replicas need to apply the change (this overstates by ≤ ~1 ms).
            await new Promise((r) => setTimeout(r, 1));
          }
        }),
      );
      if (times.some((t) => !Number.isFinite(t))) missed++;
      all.push(Math.max(...times));
      for (const [j, t] of times.entries()) if (replicas[j] !== revoker) others.push(t);
    }
    await stopAll();
    const sort = (xs) => [...xs].sort((x, y) => x - y);
    return { all: sort(all), others: sort(others), baseline: sort(baseline), miss: sort(miss), pending, missed };
  });
}

function report(label, target, r) {
  const p99 = quantile(r.all, 0.99);
  const base = quantile(r.baseline, 0.5);
  const pass = p99 <= target && r.missed === 0;
  console.log(`\n${label} (${N} revocations, 3 replicas, reconcile every ${RECONCILE_MS} ms)`);
  console.log(
    `  baseline: one /v1/verify round trip, cached key   p50 ${fmt(base)}  p99 ${fmt(quantile(r.baseline, 0.99))}`,
  );
  console.log(
    `  baseline: one /v1/verify round trip, cache miss   p50 ${fmt(quantile(r.miss, 0.5))}  p99 ${fmt(quantile(r.miss, 0.99))}`,
  );
  console.log(
    `  refused on every replica after the admin call     p50 ${fmt(quantile(r.all, 0.5))}  p99 ${fmt(p99)}  max ${fmt(r.all.at(-1))}  (p99 = ${(p99 / base).toFixed(1)}× a cached round trip)`,
  );
  console.log(
    `  refused on each other replica                     p50 ${fmt(quantile(r.others, 0.5))}  p99 ${fmt(quantile(r.others, 0.99))}`,
  );
  console.log(`  responses marked pending: ${r.pending}; not refused within ${DEADLINE_MS} ms: ${r.missed}`);
  console.log(`  ${pass ? "PASS" : "FAIL"}  propagation p99 ${fmt(p99)} (target ≤ ${target} ms)`);
}

async function main() {
  if (!PG) {
    console.log("bench/replicas: SKIP (KEYWARD_TEST_DATABASE_URL is not set)");
    return;
  }
  if (REDIS) {
    report("Redis pub/sub", 100, await run("redis", { KEYWARD_REDIS_URL: REDIS }));
  } else {
    console.log("bench/replicas: Redis run SKIP (KEYWARD_TEST_REDIS_URL is not set)");
  }
  report("PostgreSQL LISTEN/NOTIFY only", 250, await run("notify", {}));
}

main()
  .catch((err) => {
    console.error(`bench/replicas: ${err.stack ?? err}`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
