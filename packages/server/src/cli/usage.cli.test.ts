import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { captureCli } from "../../test-support/cli-capture.js";
import { startTestServer, TEST_ADMIN_TOKEN, type TestServer } from "../../test-support/server.js";
import { startUpstream } from "../../test-support/upstream.js";
import { frozenClock } from "../clock.js";

/** `keyward usage` in-process against a real Keyward whose clock stands at 12:30, as an operator types it. */

let kw: TestServer;
let up: Awaited<ReturnType<typeof startUpstream>>;
let keyId: string;
const dir = mkdtempSync(join(tmpdir(), "keyward-cli-usage-"));
const clock = frozenClock(Date.UTC(2026, 2, 10, 12, 30));

const cli = (argv: string[]) =>
  captureCli(argv, { env: { KEYWARD_URL: kw.url, KEYWARD_ADMIN_TOKEN: TEST_ADMIN_TOKEN } });

beforeAll(async () => {
  up = await startUpstream();
  const configFile = join(dir, "keyward.yaml");
  writeFileSync(configFile, "usage:\n  flush_interval_ms: 100\n");
  kw = await startTestServer({}, { configFile, clock });
  await kw.admin("POST", "/agents", { name: "echo", upstream: up.url });
  await kw.admin("POST", "/consumers", { name: "acme" });
  const issued = await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:echo"] });
  keyId = issued.body.key.id;
  const call = (agent: string) =>
    fetch(`${kw.url}/agents/${agent}/x`, { headers: { authorization: `Bearer ${issued.body.secret}` } });
  for (let i = 0; i < 3; i++) expect((await call("echo")).status).toBe(200);
  for (let i = 0; i < 2; i++) expect((await call("billing")).status).toBe(403);
  // Counts reach the store on the next flush (every 100 ms here).
  await vi.waitFor(
    async () => expect((await kw.admin("GET", `/keys/${keyId}/usage`)).body.items.at(-1).allowed).toBe(3),
    { timeout: 10_000, interval: 50 },
  );
});
afterAll(async () => {
  await kw?.close();
  await up?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("keyward usage", () => {
  it("prints a key's buckets as an aligned table", async () => {
    const r = await cli([
      "usage",
      keyId,
      "--step",
      "1h",
      "--from",
      "2026-03-10T11:00:00Z",
      "--to",
      "2026-03-10T13:00:00Z",
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      [
        "TIME              ALLOWED  DENIED  BY CODE",
        "2026-03-10 11:00  0        0       -",
        "2026-03-10 12:00  3        2       scope_denied 2",
        "",
      ].join("\n"),
    );
    // The long form, and --json as the server answered.
    const json = await cli(["usage", "key", keyId, "--step", "1d", "--json"]);
    expect(JSON.parse(json.stdout).items.at(-1)).toEqual({
      t: "2026-03-10T00:00:00.000Z",
      allowed: 3,
      denied: { scope_denied: 2 },
    });
  });

  it("ranks keys, agents and consumers", async () => {
    const byAgent = await cli(["usage", "top", "--by", "agent"]);
    expect(byAgent.code, byAgent.stderr).toBe(0);
    expect(byAgent.stdout).toBe(
      [
        "AGENT    REQUESTS  ALLOWED  DENIED  BY CODE",
        "echo     3         3        0       -",
        "billing  2         0        2       scope_denied 2",
        "",
      ].join("\n"),
    );
    const byKey = await cli(["usage", "top", "--top", "1"]);
    expect(byKey.stdout.split("\n")[1]).toMatch(new RegExp(`^${keyId}\\s+5\\s+3\\s+2\\s+scope_denied 2$`));
    expect((await cli(["usage", "top", "--by", "consumer"])).stdout).toContain("consumer:acme");
  });

  it("reports bad input: a usage error (exit 2) or the server's reason (exit 1)", async () => {
    const none = await cli(["usage"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("missing key id or 'top'");
    const badTop = await cli(["usage", "top", "--top", "many"]);
    expect(badTop.code).toBe(2);
    const step = await cli(["usage", keyId, "--step", "5m"]);
    expect(step.code).toBe(1);
    expect(step.stderr).toBe("error: invalid_request: query.step: must be 1m, 1h or 1d\n");
    const unknown = await cli(["usage", "key_nosuchkey"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("not_found");
    const help = await cli(["usage", "--help"]);
    expect(help.stdout).toContain("keyward usage top [--by key|agent|consumer]");
  });
});
