import { join } from "node:path";
import { FULL_CHECKS, setUpGateway, startKeyward } from "./lib/keyward.mjs";
import { startProcess, stopAll } from "./lib/procs.mjs";
import { freePort } from "./lib/net.mjs";
import { runWrk } from "./lib/wrk.mjs";
import { cpuSeconds } from "./lib/cpu.mjs";
const ROOT = "/work/main/";
const up = await startProcess("upstream", process.execPath, [join(ROOT, "bench/upstream.mjs")], { ready: /listening (\d+)/ });
const port = await freePort();
await startProcess("redis", "redis-server", ["--port", String(port), "--save", "", "--appendonly", "no"], { ready: /Ready to accept/ });
const mem = await startKeyward(ROOT);
const red = await startKeyward(ROOT, { env: { KEYWARD_REDIS_URL: `redis://127.0.0.1:${port}` } });
const upUrl = `http://127.0.0.1:${up.match[1]}`;
const sMem = await setUpGateway(mem, upUrl);
const sRed = await setUpGateway(red, upUrl);
const { secret: sRate } = await red.admin("POST", "/keys", { owner: "consumer:bench", ...FULL_CHECKS, quota: undefined });
const { secret: sNone } = await red.admin("POST", "/keys", { owner: "consumer:bench", ...FULL_CHECKS, quota: undefined, rate_limit: undefined });
const variants = [["memory full", mem, sMem], ["redis full", red, sRed], ["redis rate only", red, sRate], ["redis none", red, sNone]];
for (let round = 0; round < 2; round++) for (const [name, kw, secret] of variants) {
  const url = `${kw.url}/agents/bench/hello`; const headers = { authorization: `Bearer ${secret}` };
  await runWrk(url, { seconds: 2, connections: 50, headers });
  const c0 = cpuSeconds(kw.pid);
  const r = await runWrk(url, { seconds: 5, connections: 50, headers });
  const c1 = cpuSeconds(kw.pid);
  console.log(name.padEnd(16), "rps", r.rps.toFixed(0).padStart(6), "cpu us/req", ((c1 - c0) * 1e6 / r.requests).toFixed(1));
}
await stopAll();
