// Verification measured inside one process, without HTTP: what a gateway request pays for the
// key lookup itself, cache miss (one indexed SQLite read + parsing) versus cache hit (memory).
// Over HTTP on a shared 2-core machine the noise floor of a single request's p99 is ~2 ms, which
// hides a sub-millisecond difference; here the timer brackets only the verification.
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { storeIntegrityKeys } from "./bulk-keys.mjs";

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

function stats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s[s.length - 1] };
}

export async function verifyInProcess(root, dataDir, { misses, hit, masterKey }) {
  const load = (p) => import(pathToFileURL(join(root, "packages/server/dist", p)).href);
  const { openSqlite } = await load("store/sqlite.js");
  const { createKeysStore } = await load("keys/keys-store.js");
  const { createKeysService } = await load("keys/keys-service.js");
  const db = openSqlite(join(dataDir, "keyward.db"));
  const audit = {
    record: async () => {},
    recordLater: () => {},
    recordIn: async () => {},
    recordToken: async () => {},
  };
  const keys = createKeysService({
    db,
    store: createKeysStore(db),
    clock: { now: () => Date.now() },
    audit,
    integrity: await storeIntegrityKeys(root, dataDir, masterKey),
    ownerExists: async () => true,
  });
  const verify = async (secret) => {
    const t = performance.now();
    let entry = keys.cached(secret);
    if (entry === undefined) entry = await keys.load(secret);
    const ms = performance.now() - t;
    if (!entry || entry === "malformed") throw new Error("bench key not found");
    return ms;
  };
  await verify(hit); // warm the hit
  const missMs = [];
  const hitMs = [];
  for (const s of misses) {
    missMs.push(await verify(s));
    hitMs.push(await verify(hit));
  }
  await db.close();
  return { miss: stats(missMs), hit: stats(hitMs) };
}

/** p99 of the gateway's own checks, from its keyward_gateway_check_seconds histogram (bucket bound). */
export async function checkLatencyP99(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const buckets = [...text.matchAll(/^keyward_gateway_check_seconds_bucket\{le="([^"]+)"\} (\d+)/gm)].map((m) => ({
    le: m[1] === "+Inf" ? Number.POSITIVE_INFINITY : Number(m[1]),
    n: Number(m[2]),
  }));
  const total = buckets.at(-1)?.n ?? 0;
  if (total === 0) return undefined;
  const bucket = buckets.find((b) => b.n >= total * 0.99);
  return { count: total, p99UpperBoundMs: bucket ? bucket.le * 1000 : undefined };
}
