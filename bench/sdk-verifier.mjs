// SDK token verification on one core (one thread, synchronous signature checks), warm JWKS cache:
// `verifier().verify()` over distinct tokens (each seen once: a full ES256 verification per call)
// and over one repeated token (the verified-result cache), against raw node:crypto ES256
// `crypto.verify` over the same signatures measured in the same run.
// Run after `npm run build`: `node bench/sdk-verifier.mjs`. Prints ratios and PASS/FAIL; exits 0.
//
// Rates are verifications per CPU-second of this single-threaded process — throughput on one core,
// and robust when other work shares the machine — with wall-clock rates printed beside them.
//
// Env: BENCH_SDK_TOKENS (20000) distinct tokens per round, BENCH_SDK_REPEATS (200000) repeated
// verifications per round, BENCH_SDK_ROUNDS (3); the median round counts.
import { createHash, generateKeyPairSync, randomUUID, sign, verify } from "node:crypto";
import { cpus, loadavg } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
import { envNumber } from "./lib/env.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TARGET_PER_S = 20_000;

const env = (name, fallback) => envNumber(name, fallback, { integer: true });
const TOKENS = env("BENCH_SDK_TOKENS", 20_000);
const REPEATS = env("BENCH_SDK_REPEATS", 200_000);
const ROUNDS = env("BENCH_SDK_ROUNDS", 3);
const log = (msg) => process.stderr.write(`bench: ${msg}\n`);

/** An issuer like Keyward: one ES256 key, RFC 7638 kid, at+jwt tokens with Keyward's claims. */
function makeIssuer() {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const { crv, x, y } = publicKey.export({ format: "jwk" });
  const kid = createHash("sha256")
    .update(JSON.stringify({ crv, kty: "EC", x, y }))
    .digest("base64url");
  const header = Buffer.from(JSON.stringify({ alg: "ES256", typ: "at+jwt", kid })).toString("base64url");
  const iss = "https://keyward.bench";
  const now = Math.floor(Date.now() / 1000);
  const token = (i) => {
    const claims = {
      iss,
      sub: `consumer:app-${i % 100}`,
      aud: "research",
      scope: "agent:research agent:tools read:docs write:notes",
      client_id: `key_${(i % 1000).toString(36).padStart(8, "0")}`,
      iat: now,
      exp: now + 3600,
      jti: randomUUID(),
      act: { sub: "agent:workflow" },
    };
    const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
    const signature = sign("sha256", Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" });
    return `${input}.${signature.toString("base64url")}`;
  };
  const jwks = JSON.stringify({ keys: [{ kty: "EC", crv, x, y, kid, alg: "ES256", use: "sig" }] });
  return { iss, publicKey, token, jwks };
}

/** Runs `fn` and answers operations per wall-clock second and per CPU second of this process. */
async function rate(n, fn) {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { perS: n / wallS, perCpuS: n / ((cpu.user + cpu.system) / 1e6) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function measure() {
  const { verifier } = await import(pathToFileURL(`${ROOT}packages/sdk/dist/index.js`).href);
  const issuer = makeIssuer();
  log(`signing ${TOKENS.toLocaleString("en")} tokens`);
  const tokens = Array.from({ length: TOKENS }, (_, i) => issuer.token(i));
  const parts = tokens.map((t) => {
    const dot = t.lastIndexOf(".");
    return { data: Buffer.from(t.slice(0, dot)), signature: Buffer.from(t.slice(dot + 1), "base64url") };
  });
  let fetches = 0;
  const fetchJwks = async () => {
    fetches++;
    return new Response(issuer.jwks, { status: 200, headers: { "content-type": "application/json" } });
  };
  const newVerifier = (extra = {}) =>
    verifier({ issuer: issuer.iss, audience: "research", fetch: fetchJwks, ...extra });

  const rawPass = () => {
    for (const p of parts) {
      if (!verify("sha256", p.data, { key: issuer.publicKey, dsaEncoding: "ieee-p1363" }, p.signature)) {
        throw new Error("baseline signature did not verify");
      }
    }
  };
  // Warm-up, untimed: both code paths optimised by the JIT before any round counts.
  const warm = verifier({ issuer: issuer.iss, audience: "research", fetch: fetchJwks });
  for (const t of tokens.slice(0, 3000)) await warm.verify(t);
  rawPass();
  fetches = 0;

  const rounds = { raw: [], distinct: [], distinctNoCache: [], repeated: [] };
  for (let r = 0; r < ROUNDS; r++) {
    log(`round ${r + 1}/${ROUNDS}`);
    rounds.raw.push(await rate(TOKENS, rawPass));
    for (const [name, extra] of [
      ["distinct", {}],
      ["distinctNoCache", { cacheSize: 0 }],
    ]) {
      // A fresh verifier per round, its JWKS loaded before the clock starts (warm cache).
      const v = newVerifier(extra);
      await v.refresh();
      rounds[name].push(
        await rate(TOKENS, async () => {
          for (const t of tokens) await v.verify(t);
        }),
      );
    }
    const v = newVerifier();
    await v.refresh();
    const one = tokens[0];
    await v.verify(one);
    rounds.repeated.push(
      await rate(REPEATS, async () => {
        for (let i = 0; i < REPEATS; i++) await v.verify(one);
      }),
    );
  }
  if (fetches !== ROUNDS * 3) throw new Error(`expected one JWKS fetch per verifier, saw ${fetches}`);
  const summary = {};
  for (const [name, list] of Object.entries(rounds)) {
    summary[name] = { perS: median(list.map((x) => x.perS)), perCpuS: median(list.map((x) => x.perCpuS)) };
  }
  return summary;
}

function report(s) {
  const n = (x) => Math.round(x).toLocaleString("en").padStart(10);
  const rows = [
    ["raw crypto.verify ES256 (baseline)", s.raw],
    ["verifier, distinct tokens", s.distinct],
    ["verifier, distinct tokens, result cache off", s.distinctNoCache],
    ["verifier, repeated token (result cache)", s.repeated],
  ];
  const load = loadavg()[0]?.toFixed(1);
  console.log(
    `\nSDK verifier — ${cpus()[0]?.model ?? "cpu"} (${cpus().length} cpus, load ${load}), ${process.version}`,
  );
  console.log(`${"scenario".padEnd(46)}${"per CPU-s".padStart(10)}${"× raw".padStart(8)}${"wall /s".padStart(11)}`);
  for (const [label, r] of rows) {
    console.log(`${label.padEnd(46)}${n(r.perCpuS)}${(r.perCpuS / s.raw.perCpuS).toFixed(2).padStart(8)} ${n(r.perS)}`);
  }
  const targets = [
    ["SDK verifier, warm JWKS, repeated token", s.repeated.perCpuS],
    ["SDK verifier, warm JWKS, distinct tokens", s.distinct.perCpuS],
  ];
  console.log("\ntargets");
  for (const [name, value] of targets) {
    const verdict = value >= TARGET_PER_S ? "PASS" : "FAIL";
    console.log(`  ${verdict}  ${name}: ${Math.round(value).toLocaleString("en")}/s on one core (goal ≥ 20,000/s)`);
  }
  console.log(
    `  INFO  distinct tokens ÷ raw crypto.verify: ${(s.distinct.perCpuS / s.raw.perCpuS).toFixed(2)}× ` +
      `(raw ES256 verification alone: ${Math.round(s.raw.perCpuS).toLocaleString("en")}/s on one core here, ` +
      "the ceiling for any verifier that checks each token's signature)",
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  report(await measure());
}
