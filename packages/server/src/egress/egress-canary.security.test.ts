import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { agentWithKey, egressCall, grant, putCredential } from "../../test-support/egress/agents.js";
import { leakForms, startEgressUpstream } from "../../test-support/egress/upstreams.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { REDACT_PATHS } from "../ops/logger.js";

/**
 * Canaries for egress: a secret planted on purpose, used through every egress path (success,
 * leaking upstream, compressed, redirects, refusals, failures, rotation), then searched for in
 * everything Keyward writes: logs at debug level, the audit log, /metrics, and the files of the
 * data dir (where the value exists only envelope-encrypted). Only the upstream may see it.
 */

const CANARY = `sk_canary_${randomBytes(18).toString("hex")}`;
const ROTATED = `sk_canary_rotated_${randomBytes(18).toString("hex")}`;
const logs: string[] = [];
const answers: string[] = [];

let kw: TestServer;
let up: Awaited<ReturnType<typeof startEgressUpstream>>;
let key: string;

beforeAll(async () => {
  up = await startEgressUpstream();
  const destination = new Writable({
    write(chunk, _enc, done) {
      logs.push(chunk.toString());
      done();
    },
  });
  const logger = pino({ level: "debug", redact: { paths: REDACT_PATHS, censor: "[redacted]" } }, destination);
  kw = await startTestServer({ KEYWARD_UPSTREAM_TIMEOUT_MS: "300", KEYWARD_ACCESS_LOG: "1" }, { logger });
  key = await agentWithKey(kw, "bot");
  await putCredential(kw, "canary", CANARY, { base_url: `${up.url}/api` });
  await putCredential(kw, "dead", CANARY, { base_url: "http://127.0.0.1:9" });
  await grant(kw, "bot", [
    { name: "canary", mode: "inject" },
    { name: "dead", mode: "inject" },
  ]);
});
afterAll(async () => {
  await kw?.close();
  await up?.close();
});

async function use(path: string, init: RequestInit = {}): Promise<void> {
  const res = await egressCall(kw, key, path, init);
  const headers = [...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n");
  answers.push(`${res.status}\n${headers}\n\n${await res.text()}`);
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

it("the canary goes to the upstream and nowhere else", async () => {
  for (const path of ["canary/models", "canary/leak", "canary/gzip-leak", "canary/compress", "canary/sse-none"]) {
    await use(path);
  }
  await use("canary/redirect?to=http%3A%2F%2F127.0.0.1%3A9%2Fsteal");
  await use("canary/..%2f..%2fadmin");
  await use("canary/x", { method: "POST", body: "payload", headers: { "content-type": "text/plain" } });
  await use("dead/x");
  await use("nope/x");
  await putCredential(kw, "canary", ROTATED);
  await use("canary/leak");

  // The upstream did receive it: the test would prove nothing otherwise.
  expect(up.seen.some((s) => s.headers.authorization === `Bearer ${CANARY}`)).toBe(true);
  expect(up.seen.some((s) => s.headers.authorization === `Bearer ${ROTATED}`)).toBe(true);
  expect(logs.length).toBeGreaterThan(5);

  const audit = JSON.stringify((await kw.admin("GET", "/audit?limit=1000")).body);
  expect(audit).toContain("credential.inject");
  const metrics = await (await fetch(`${kw.url}/metrics`)).text();
  expect(metrics).toContain('keyward_credential_reads_total{mode="inject"}');
  const places: Record<string, string> = {
    logs: logs.join("\n"),
    answers: answers.join("\n"),
    audit,
    metrics,
  };
  for (const file of filesUnder(kw.dataDir)) places[file] = readFileSync(file).toString("latin1");

  for (const secret of [CANARY, ROTATED]) {
    for (const [form, value] of Object.entries(leakForms(secret))) {
      for (const [where, text] of Object.entries(places)) {
        expect(text.includes(value), `${form} of the canary in ${where}`).toBe(false);
      }
    }
  }
});
