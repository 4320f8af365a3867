import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { captureCli } from "../../test-support/cli-capture.js";
import { startTestServer, TEST_ADMIN_TOKEN, type TestServer } from "../../test-support/server.js";
import { startUpstream } from "../../test-support/upstream.js";
import { frozenClock } from "../clock.js";

/**
 * `keyward alerts` in-process against a real Keyward on SQLite whose detectors raised two alerts
 * from real gateway traffic: a canary key used at 12:00, a denial spike at 12:05.
 */

let kw: TestServer;
let up: Awaited<ReturnType<typeof startUpstream>>;
const keys = { spiky: "", canary: "" };
const ids = { spike: "", canary: "" };
const dir = mkdtempSync(join(tmpdir(), "keyward-cli-alerts-"));
const clock = frozenClock(Date.UTC(2026, 2, 10, 12, 0));

const cli = (argv: string[]) =>
  captureCli(argv, { env: { KEYWARD_URL: kw.url, KEYWARD_ADMIN_TOKEN: TEST_ADMIN_TOKEN } });

beforeAll(async () => {
  up = await startUpstream();
  const configFile = join(dir, "keyward.yaml");
  writeFileSync(
    configFile,
    "anomalies:\n  rules:\n    - { name: spike, detector: denial_spike, threshold: 5, window_s: 60 }\n    - { name: canary, detector: canary }\n",
  );
  kw = await startTestServer({}, { configFile, clock });
  await kw.admin("POST", "/agents", { name: "echo", upstream: up.url });
  await kw.admin("POST", "/consumers", { name: "acme" });
  const issue = async (extra: Record<string, unknown> = {}) =>
    (await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:echo"], ...extra })).body;
  const canary = await issue({ canary: true });
  const spiky = await issue();
  keys.canary = canary.key.id;
  keys.spiky = spiky.key.id;
  const call = (secret: string, agent: string) =>
    fetch(`${kw.url}/agents/${agent}/x`, { headers: { authorization: `Bearer ${secret}` } });
  const alerts = async () => (await kw.admin("GET", "/alerts")).body.items as { id: string; rule: string }[];

  expect((await call(canary.secret, "echo")).status).toBe(401);
  await vi.waitFor(async () => expect(await alerts()).toHaveLength(1), { timeout: 5000, interval: 50 });
  clock.advance(5 * 60_000);
  for (let i = 0; i < 5; i++) expect((await call(spiky.secret, "billing")).status).toBe(403);
  await vi.waitFor(async () => expect(await alerts()).toHaveLength(2), { timeout: 5000, interval: 50 });
  const [spike, can] = await alerts();
  ids.spike = spike?.id as string;
  ids.canary = can?.id as string;
});
afterAll(async () => {
  await kw?.close();
  await up?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Columns padded to the widest cell, as formatTable does, so ids of any length line up. */
function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows
    .map((r) => `${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ")}\n`)
    .join("");
}

describe("keyward alerts", () => {
  it("lists alerts newest first as an aligned table, and filters by severity, key and status", async () => {
    const r = await cli(["alerts"]);
    expect(r.code, r.stderr).toBe(0);
    const head = ["ID", "TIME", "SEVERITY", "STATUS", "RULE", "KEY", "EVIDENCE"];
    const spikeRow = [
      ids.spike,
      "2026-03-10 12:05",
      "warning",
      "open",
      "spike",
      keys.spiky,
      "denials=5 ratio=1 threshold=5 window_start=2026-03-10T12:05:00.000Z window_s=60",
    ];
    const canaryRow = [
      ids.canary,
      "2026-03-10 12:00",
      "critical",
      "open",
      "canary",
      keys.canary,
      // Cut at 80 characters; --json has the whole evidence.
      "surface=gateway address=127.0.0.1 network=127.0.0.0/24 agent=echo owner=consume…",
    ];
    expect(r.stdout).toBe(table([head, spikeRow, canaryRow]));

    const critical = await cli(["alerts", "--severity", "critical"]);
    expect(
      critical.stdout
        .split("\n")
        .slice(1, -1)
        .map((l) => l.split(/ +/)[0]),
    ).toEqual([ids.canary]);
    const byKey = await cli(["alerts", "list", "--key", keys.spiky, "--json"]);
    expect(JSON.parse(byKey.stdout)).toMatchObject({
      items: [{ id: ids.spike, key_id: keys.spiky }],
      next_cursor: null,
    });
    expect((await cli(["alerts", "--status", "acked"])).stdout).toBe("no alerts\n");
  });

  it("pages with --limit, telling people how to get the rest", async () => {
    const first = await cli(["alerts", "--limit", "1"]);
    expect(first.code).toBe(0);
    expect(
      first.stdout
        .split("\n")
        .slice(1, -1)
        .map((l) => l.split(/ +/)[0]),
    ).toEqual([ids.spike]);
    const cursor = /add --cursor (\S+)/.exec(first.stderr)?.[1] as string;
    expect(cursor).toBeTruthy();
    const second = await cli(["alerts", "--limit", "1", "--cursor", cursor]);
    expect(
      second.stdout
        .split("\n")
        .slice(1, -1)
        .map((l) => l.split(/ +/)[0]),
    ).toEqual([ids.canary]);
  });

  it("acks an alert once: shown acked, then listed under --status acked and no longer open", async () => {
    const r = await cli(["alerts", "ack", ids.canary]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^id        ${ids.canary}\ntime      2026-03-10 12:00\nseverity  critical\n`));
    expect(r.stdout).toContain("\nstatus    acked\nrule      canary\n");
    expect((await cli(["alerts", "ack", ids.canary])).code).toBe(0);
    const acked = JSON.parse((await cli(["alerts", "--status", "acked", "--json"])).stdout);
    expect(acked.items.map((a: { id: string }) => a.id)).toEqual([ids.canary]);
    const open = JSON.parse((await cli(["alerts", "--status", "open", "--json"])).stdout);
    expect(open.items.map((a: { id: string }) => a.id)).toEqual([ids.spike]);
    const audit = await kw.admin("GET", `/audit?action=alert.ack&principal=${ids.canary}`);
    expect(audit.body.events).toHaveLength(1);
  });

  it("reports bad input as one line: the server's 400 and 404, and usage mistakes with exit 2", async () => {
    const loud = await cli(["alerts", "--severity", "loud"]);
    expect(loud.code).toBe(1);
    expect(loud.stderr).toMatch(/^error: invalid_request: .*severity/);
    const missing = await cli(["alerts", "ack", "alert_nope"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: not_found: /);
    const noId = await cli(["alerts", "ack"]);
    expect(noId.code).toBe(2);
    expect(noId.stderr).toContain("see 'keyward alerts --help'");
    expect((await cli(["alerts", "--limit", "0"])).code).toBe(2);
    expect((await cli(["alerts", "mute"])).stderr).toContain("unknown command 'keyward alerts mute'");
  });

  it("--help shows both forms with aligned flags", async () => {
    const r = await cli(["alerts", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        "usage: keyward alerts <command> [flags]",
        "anomaly alerts, newest first; acknowledge one",
        "",
        "  keyward alerts list [--status open|acked] [--severity S] [--key KEY_ID] [--limit N] [--cursor C]",
        "  keyward alerts ack ALERT_ID",
        "",
        "  --status S    open or acked",
        "  --severity S  info, warning or critical",
        "  --key KEY_ID  only alerts about that key",
        "  --limit N     alerts per page (default 50, at most 1000)",
        "",
        "`keyward alerts [flags]` is short for `keyward alerts list [flags]`.",
        "Acknowledging is recorded in the audit log; it unfreezes nothing (keyward keys unfreeze).",
        "",
        "global flags: --url URL, --token TOKEN, --json, -h/--help (see 'keyward --help')",
        "",
      ].join("\n"),
    );
    expect((await cli(["--help"])).stdout).toMatch(/\n {2}alerts +anomaly alerts, newest first/);
  });
});
