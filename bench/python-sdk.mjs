// The Python SDK (issue 17), measured in CPython with baselines from the same run:
//   - `kw.get()` calls per second (target ≥ 1,000,000/s: a dict lookup's order), beside a plain
//     dict lookup in the same process;
//   - the verifier on one repeated token (result cache; target ≥ 50,000/s) and on distinct tokens
//     (a full ES256 verification each; target ≥ 0.7 × raw `cryptography` ES256 verification of the
//     same signatures).
// Each script prints one JSON line; this runner checks the targets and prints PASS/FAIL.
// Needs the virtual environment `npm test` makes (packages/sdk-python/.venv); run after it.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PY = join(ROOT, "packages/sdk-python/.venv/bin/python");
const log = (msg) => process.stderr.write(`bench(python): ${msg}\n`);

if (!existsSync(PY)) {
  log("packages/sdk-python/.venv is missing: run `npm test` (or `node scripts/python.mjs test`) first; skipped");
  process.exit(0);
}

function runScript(name) {
  const r = spawnSync(PY, [join(ROOT, "packages/sdk-python/bench", name)], {
    cwd: ROOT,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (r.status !== 0) throw new Error(`${name} exited ${r.status ?? r.signal}`);
  const line = r.stdout.trim().split("\n").filter(Boolean).at(-1);
  return JSON.parse(line);
}

const fmt = (n) => Math.round(n).toLocaleString("en-US");
const targets = [];
const get = runScript("bench_get.py");
console.log(`kw.get():          ${fmt(get.get_per_s)}/s`);
if (get.dict_get_per_s) {
  console.log(
    `dict lookup:       ${fmt(get.dict_get_per_s)}/s  (kw.get ÷ dict = ${(get.get_per_s / get.dict_get_per_s).toFixed(2)})`,
  );
}
targets.push(["kw.get() ≥ 1,000,000/s", get.get_per_s >= 1_000_000]);

const v = runScript("bench_verify.py");
const ratio = v.distinct_per_s / v.raw_cryptography_per_s;
console.log(`verify, repeated:  ${fmt(v.repeated_per_s)}/s`);
console.log(`verify, distinct:  ${fmt(v.distinct_per_s)}/s`);
console.log(`raw cryptography:  ${fmt(v.raw_cryptography_per_s)}/s  (distinct ÷ raw = ${ratio.toFixed(2)})`);
targets.push(["verifier, repeated token ≥ 50,000/s", v.repeated_per_s >= 50_000]);
targets.push(["verifier, distinct tokens ≥ 0.7 × raw cryptography ES256", ratio >= 0.7]);

console.log("");
for (const [what, ok] of targets) console.log(`${ok ? "PASS" : "FAIL"}  ${what}`);
