// Get-hit cost of @keyward/sdk/cache against a plain Map holding the same keys, measured in the
// same run (the Map is the baseline: the hot path must not get slower than the old hand-made caches).
// Run: npx tsc -b packages/sdk && node bench/cache-get.mjs
import { createHmac } from "node:crypto";
import { createBoundedCache } from "@keyward/sdk/cache";

const N = 10_000;
const ROUNDS = 200;
const keys = Array.from({ length: N }, (_, i) => `kw_live_${i.toString(36).padStart(12, "0")}`);
const map = new Map();
const withTtl = createBoundedCache({ max: N, ttlMs: 60_000 });
const noTtl = createBoundedCache({ max: N });
for (const k of keys) {
  map.set(k, { k });
  withTtl.set(k, { k });
  noTtl.set(k, { k });
}

function time(get) {
  let sink = 0;
  const start = process.hrtime.bigint();
  for (let r = 0; r < ROUNDS; r++) for (let i = 0; i < N; i++) if (get(keys[i]) !== undefined) sink++;
  const ns = Number(process.hrtime.bigint() - start) / (ROUNDS * N);
  if (sink !== ROUNDS * N) throw new Error("a lookup missed");
  return ns;
}

// What a key hit pays anyway before its lookup: the keyed hash of the presented secret.
const macKey = Buffer.alloc(32, 7);
const hmac = (k) => createHmac("sha256", macKey).update(k).digest("base64url");

const runs = { map: [], noTtl: [], withTtl: [] };
for (let i = 0; i < 7; i++) {
  runs.map.push(time((k) => map.get(k)));
  runs.noTtl.push(time((k) => noTtl.get(k)));
  runs.withTtl.push(time((k) => withTtl.get(k)));
}
const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
const base = median(runs.map);
console.log(`get-hit, ${N} keys, median of 7 runs of ${ROUNDS * N} lookups`);
console.log(`  Map.get                  ${base.toFixed(1)} ns  1.00x`);
for (const name of ["noTtl", "withTtl"]) {
  const ns = median(runs[name]);
  console.log(`  boundedCache.get ${name.padEnd(8)} ${ns.toFixed(1)} ns  ${(ns / base).toFixed(2)}x`);
}
const start = process.hrtime.bigint();
for (let i = 0; i < 100_000; i++) hmac(keys[i % N]);
const mac = Number(process.hrtime.bigint() - start) / 100_000;
console.log(`  HMAC-SHA256 of a key     ${mac.toFixed(1)} ns  ${(mac / base).toFixed(2)}x (paid by every key hit)`);
