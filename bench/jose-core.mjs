// The JOSE core (@keyward/sdk/jose, own code on node:crypto) against the `jose` library, verifying
// the same ES256 token N times on one thread, with raw node:crypto `verify` over the same bytes as
// the in-run baseline (the floor: one native signature check, nothing else).
//
//   full JWT:        core verifyJwt (header policy, kid lookup, signature, claims iss/aud/exp/iat)
//                    vs jose jwtVerify (algorithms, typ, issuer, audience, required exp/iat).
//   signature only:  core parseCompact + verifySignature + decodePayload vs jose compactVerify.
//
// Run after building the SDK: `npx tsc -b packages/sdk && node bench/jose-core.mjs`.
// Rates are verifications per CPU-second of this process (robust on a shared machine); each round
// alternates the order, and the median round counts. Env: BENCH_JOSE_N (20000), BENCH_JOSE_ROUNDS (5).
import { generateKeyPairSync, verify } from "node:crypto";
import { cpus, loadavg } from "node:os";
import { compactVerify, importJWK, jwtVerify } from "jose";
import { envNumber } from "./lib/env.mjs";

const core = await import("../packages/sdk/dist/jose/index.js").catch(() => {
  throw new Error("packages/sdk/dist/jose is missing: run `npx tsc -b packages/sdk` first");
});

const N = envNumber("BENCH_JOSE_N", 20_000, { integer: true });
const ROUNDS = envNumber("BENCH_JOSE_ROUNDS", 5, { integer: true });

const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const kid = "bench-kid";
const iss = "https://keyward.bench";
const now = Math.floor(Date.now() / 1000);
const claims = { iss, sub: "consumer:app", aud: "research", exp: now + 3600, iat: now, jti: "j1", scope: "read" };
const token = core.signCompact(core.encodeEs256Header(kid, "at+jwt"), claims, privateKey);
const [h, p, s] = token.split(".");
const signingInput = Buffer.from(`${h}.${p}`);
const signature = Buffer.from(s, "base64url");

const ES256 = new Set(["ES256"]);
const coreKey = { key: publicKey, algorithms: ES256 };
const coreOptions = {
  algorithms: ES256,
  typ: { accept: ["at+jwt"] },
  key: (k) => (k === kid ? coreKey : undefined),
  claims: { issuer: iss, audience: new Set(["research"]), required: ["exp", "iat"] },
};
const parsePolicy = { algorithms: ES256, typ: { accept: ["at+jwt"] } };
const joseOptions = {
  algorithms: ["ES256"],
  typ: "at+jwt",
  issuer: iss,
  audience: "research",
  requiredClaims: ["exp", "iat"],
};
const joseKey = (header) => {
  if (header.kid !== kid) throw new Error("unknown kid");
  return publicKey;
};
// jose's native key form (WebCrypto), imported once: its fastest path, so the comparison is fair.
const cryptoKey = await importJWK({ ...publicKey.export({ format: "jwk" }), alg: "ES256" }, "ES256");
const joseCryptoKey = (header) => {
  if (header.kid !== kid) throw new Error("unknown kid");
  return cryptoKey;
};

const cases = {
  "node:crypto verify (floor)": () => {
    if (!verify("sha256", signingInput, { key: publicKey, dsaEncoding: "ieee-p1363" }, signature)) throw new Error("x");
  },
  "core verifyJwt": () => {
    if (!core.verifyJwt(token, { ...coreOptions, nowS: Date.now() / 1000 }).ok) throw new Error("core refused");
  },
  "jose jwtVerify (KeyObject)": async () => {
    await jwtVerify(token, joseKey, joseOptions);
  },
  "jose jwtVerify (CryptoKey)": async () => {
    await jwtVerify(token, joseCryptoKey, joseOptions);
  },
  "core parse+signature": () => {
    const parsed = core.parseCompact(token, parsePolicy);
    if (!parsed.ok || !core.verifySignature(parsed.value, coreKey).ok || !core.decodePayload(parsed.value).ok) {
      throw new Error("core refused");
    }
  },
  "jose compactVerify (CryptoKey)": async () => {
    await compactVerify(token, joseCryptoKey, { algorithms: ["ES256"] });
  },
};

/** Verifications per CPU-second over N sequential calls (awaited, as a request handler would). */
async function rate(fn) {
  const start = process.cpuUsage();
  for (let i = 0; i < N; i++) await fn();
  const used = process.cpuUsage(start);
  return N / ((used.user + used.system) / 1e6);
}

const log = (msg) => process.stderr.write(`bench: ${msg}\n`);
log(`${N} verifications per case, ${ROUNDS} rounds; ${cpus().length} cores, load ${loadavg()[0].toFixed(2)}`);
for (const fn of Object.values(cases)) for (let i = 0; i < 2000; i++) await fn(); // warm-up (JIT)

const results = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
for (let round = 0; round < ROUNDS; round++) {
  const names = Object.keys(cases);
  if (round % 2 === 1) names.reverse();
  for (const name of names) results[name].push(await rate(cases[name]));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const m = Object.fromEntries(Object.entries(results).map(([name, xs]) => [name, median(xs)]));
const floor = m["node:crypto verify (floor)"];

console.log("| case | verifications/CPU-s | vs node:crypto floor |");
console.log("| --- | ---: | ---: |");
for (const [name, r] of Object.entries(m)) {
  console.log(`| ${name} | ${Math.round(r).toLocaleString("en")} | ${(r / floor).toFixed(2)} |`);
}
console.log("");
const best = Math.max(m["jose jwtVerify (KeyObject)"], m["jose jwtVerify (CryptoKey)"]);
console.log(`core / jose, full JWT (jose's faster key form): ${(m["core verifyJwt"] / best).toFixed(2)}x`);
console.log(
  `core / jose, signature only:                    ${(m["core parse+signature"] / m["jose compactVerify (CryptoKey)"]).toFixed(2)}x`,
);
