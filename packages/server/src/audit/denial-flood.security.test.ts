import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestServer } from "../../test-support/server.js";
import { startTestServerAt } from "../../test-support/server-at.js";
import { frozenClock } from "../clock.js";
import { openStore } from "../store/open-store.js";
import { DEFAULT_DENIAL_LIMITS } from "./denial-sampler.js";

/**
 * Issue 18, finding 3: requests without a credential must not fill the disk. Before the fix each
 * one stored its raw agent name (15 KB here): these 2,000 requests wrote about 30 MB of records.
 */

const LONG_NAME = "a".repeat(15 * 1024);
const N = 1000;

interface Row {
  actor: string;
  action: string;
  target: string | null;
  code: string | null;
  ip: string | null;
  request_id: string | null;
  details: string | null;
}

let dataDir: string;
let kw: TestServer;
let key: string;
let rows: Row[] = [];
let setupRows = 0;
let suppressedMetric = 0;

async function inBatches(n: number, send: (i: number) => Promise<Response>): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i += 25) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(25, n - i) }, async (_, j) => {
        const res = await send(i + j);
        await res.arrayBuffer();
        return res.status;
      }),
    );
    statuses.push(...batch);
  }
  return statuses;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "keyward-flood-"));
  // Frozen: the whole flood falls in one sampling window, so the bound below is exact.
  kw = await startTestServerAt(
    dataDir,
    { KEYWARD_TRUSTED_PROXIES: "127.0.0.1/32,::1/128" },
    { clock: frozenClock(Date.now()) },
  );
  await kw.admin("POST", "/agents", { name: "echo", upstream: "http://127.0.0.1:9" });
  await kw.admin("POST", "/consumers", { name: "c" });
  key = (await kw.admin("POST", "/keys", { owner: "consumer:c", scopes: ["agent:echo"] })).body.secret;
  setupRows = (await kw.admin("GET", "/audit?limit=1000")).body.events.length;

  // 1,000 without any credential, 15 KB names, from one address.
  const anonymous = await inBatches(N, () => fetch(`${kw.url}/agents/${LONG_NAME}/x`));
  expect(new Set(anonymous)).toEqual(new Set([401]));
  // 1,000 with a made-up key through a trusted proxy, each from another client address.
  const rotating = await inBatches(N, (i) =>
    fetch(`${kw.url}/agents/${LONG_NAME}/x`, {
      headers: { "x-api-key": `kwk_${"x".repeat(40)}`, "x-forwarded-for": `10.${(i >> 8) & 255}.${i & 255}.7` },
    }),
  );
  expect(new Set(rotating)).toEqual(new Set([401]));
  // Denials of a known key, after the unauthenticated budget is spent: every one is recorded.
  const known = await inBatches(50, () => fetch(`${kw.url}/agents/other/x`, { headers: { "x-api-key": key } }));
  expect(new Set(known)).toEqual(new Set([403]));
  // A bidi override and a newline in the name, an escaped C1 control in a header.
  const bidi = await fetch(`${kw.url}/agents/%E2%80%AEevil%0Aname/x`, {
    // U+202E's UTF-8 bytes, as Node reads a header (latin1): a C1 control among them.
    headers: { "x-api-key": key, "x-forwarded-for": `${Buffer.from("\u202e", "utf8").toString("latin1")}1.2.3.4` },
  });
  expect(bidi.status).toBe(403);

  const metrics = await (await fetch(`${kw.url}/metrics`)).text();
  suppressedMetric = Number(/^keyward_audit_denials_suppressed_total (\d+)/m.exec(metrics)?.[1]);

  await kw.close(); // flushes the audit queue and the sampler's summaries
  const db = await openStore(undefined, dataDir);
  rows = await db.query<Row>(
    "SELECT actor, action, target, code, ip, request_id, details FROM audit_events ORDER BY seq",
  );
  await db.close();
}, 120_000);

afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

describe("unauthenticated denials cannot fill the audit log", () => {
  it("2,000 requests with 15 KB names add a bounded number of small records", () => {
    const { perAddressPerMinute, perMinute } = DEFAULT_DENIAL_LIMITS;
    const flood = rows.slice(setupRows).filter((r) => r.actor === "anonymous");
    // At most the global budget, plus one summary per address cut (each was recorded in full
    // first) and one for the global cap.
    expect(flood.length).toBeLessThanOrEqual(perMinute + perMinute / perAddressPerMinute + 1);
    const bytes = rows.reduce(
      (n, r) =>
        n +
        [r.actor, r.action, r.target, r.code, r.ip, r.request_id, r.details].reduce((m, v) => m + (v?.length ?? 0), 0),
      0,
    );
    // ~250 bytes a record; 30 MB before the fix.
    expect(bytes).toBeLessThanOrEqual(rows.length * 1024);
    expect(bytes).toBeLessThan(1024 * 1024);
    for (const r of rows) expect(r.target?.length ?? 0).toBeLessThanOrEqual(301);
    expect(flood.filter((r) => r.action === "gateway.deny").every((r) => r.target === "agent:(invalid name)")).toBe(
      true,
    );
  });

  it("one address gets its budget, then one summary saying how many were left out", () => {
    const fromPeer = rows.filter((r) => r.action === "gateway.deny" && r.actor === "anonymous" && r.ip === "127.0.0.1");
    expect(fromPeer).toHaveLength(DEFAULT_DENIAL_LIMITS.perAddressPerMinute);
    const summary = rows.filter((r) => r.action === "audit.denials_suppressed" && r.ip === "127.0.0.1");
    expect(summary).toHaveLength(1);
    expect(JSON.parse(summary[0]?.details ?? "{}")).toMatchObject({
      suppressed: N - DEFAULT_DENIAL_LIMITS.perAddressPerMinute,
      reason: "per_address",
    });
  });

  it("rotating addresses through a trusted proxy meet the global cap, and the metric counts what was left out", () => {
    const rotated = rows.filter((r) => r.action === "gateway.deny" && r.ip?.startsWith("10."));
    expect(rotated.length).toBe(DEFAULT_DENIAL_LIMITS.perMinute - DEFAULT_DENIAL_LIMITS.perAddressPerMinute);
    const global = rows.filter((r) => r.action === "audit.denials_suppressed" && r.ip === null);
    expect(global).toHaveLength(1);
    const left = 2 * N - DEFAULT_DENIAL_LIMITS.perMinute;
    expect(JSON.parse(global[0]?.details ?? "{}").suppressed + (N - DEFAULT_DENIAL_LIMITS.perAddressPerMinute)).toBe(
      left,
    );
    expect(suppressedMetric).toBe(left);
  });

  it("denials of a known key are all recorded, even with the budget spent", () => {
    const known = rows.filter((r) => r.action === "gateway.deny" && r.actor === "consumer:c");
    expect(known).toHaveLength(51);
    expect(known.filter((r) => r.target === "agent:other")).toHaveLength(50);
  });

  it("no control or bidi character reaches a record unescaped", () => {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
    const unsafe = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
    for (const r of rows) {
      for (const v of [r.actor, r.action, r.target, r.code, r.ip, r.request_id, r.details]) {
        expect(unsafe.test(v ?? "")).toBe(false);
      }
    }
    const bidi = rows.filter(
      (r) => r.action === "gateway.deny" && r.actor === "consumer:c" && r.target !== "agent:other",
    );
    expect(bidi.map((r) => r.target)).toEqual(["agent:(invalid name)"]);
  });
});
