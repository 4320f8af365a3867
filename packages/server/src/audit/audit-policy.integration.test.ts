import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { type SeenRequest, startUpstream } from "../../test-support/upstream.js";
import { type ApiErrorBody, readJson } from "../../test-support/wire.js";
import { frozenClock } from "../clock.js";

// The audit policy, end to end: break the audit table under a running server (a second SQLite
// connection renames it), then check what callers see.
let kw: TestServer | undefined;
let up: Awaited<ReturnType<typeof startUpstream>> | undefined;

afterEach(async () => {
  await kw?.close();
  await up?.close();
  kw = undefined;
  up = undefined;
});

async function setup(env: Record<string, string> = {}) {
  up = await startUpstream();
  kw = await startTestServer(env);
  await kw.admin("POST", "/agents", { name: "echo", upstream: up.url });
  await kw.admin("POST", "/consumers", { name: "c" });
  const created = await kw.admin("POST", "/keys", { owner: "consumer:c", scopes: ["agent:echo"] });
  return { kw, secret: created.body.secret as string };
}

/** Polls /metrics until a failed audit write is counted (bounded: fails the test after ~2 s). */
async function waitForAuditFailure(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const metrics = await (await fetch(`${url}/metrics`)).text();
    if (/keyward_audit_failures_total [1-9]/.test(metrics)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("no audit failure was counted");
}

function breakAudit(dataDir: string): () => void {
  const db = new Database(join(dataDir, "keyward.db"));
  db.pragma("busy_timeout = 5000");
  db.exec("ALTER TABLE audit_events RENAME TO audit_events_away");
  return () => {
    db.exec("ALTER TABLE audit_events_away RENAME TO audit_events");
    db.close();
  };
}

describe("audit policy", () => {
  it("records every newly minted upstream token, with the jti the upstream received", async () => {
    const { kw, secret } = await setup();
    const res = await fetch(`${kw.url}/agents/echo/x`, { headers: { "x-api-key": secret } });
    const seen = await readJson<SeenRequest>(res);
    const jwt = (seen.headers.authorization as string).slice(7);
    const jti = JSON.parse(Buffer.from(jwt.split(".")[1] as string, "base64url").toString()).jti;
    const events = (await kw.admin("GET", "/audit?action=token.mint")).body.events;
    expect(events.some((e: { details?: { jti?: string } }) => e.details?.jti === jti)).toBe(true);
  });

  it("fails closed by default: no change without its record, no new token while the log is failing", async () => {
    const clock = frozenClock(Date.now());
    up = await startUpstream();
    kw = await startTestServer({}, { clock });
    await kw.admin("POST", "/agents", { name: "echo", upstream: up.url });
    await kw.admin("POST", "/consumers", { name: "c" });
    const secrets: string[] = [];
    for (let i = 0; i < 2; i++) {
      secrets.push((await kw.admin("POST", "/keys", { owner: "consumer:c", scopes: ["agent:echo"] })).body.secret);
    }
    const [first, second] = secrets as [string, string];
    const call = (secret: string) => fetch(`${kw?.url}/agents/echo/x`, { headers: { "x-api-key": secret } });
    const restore = breakAudit(kw.dataDir);
    try {
      // The first token's record fails in its batch (off the request path)…
      expect((await call(first)).status).toBe(200);
      await waitForAuditFailure(kw.url);
      // …and from then on no new token is issued until the log works again: each waits for its
      // own record, which fails.
      const refused = await call(second);
      expect(refused.status).toBe(503);
      expect((await readJson<ApiErrorBody>(refused)).error.code).toBe("audit_unavailable");
      expect(up.seen).toHaveLength(1);
      const create = await kw.admin("POST", "/agents", { name: "later", upstream: "http://127.0.0.1:1" });
      expect(create.status).toBe(503);
      expect(create.body.error.code).toBe("audit_unavailable");
    } finally {
      restore();
    }
    clock.advance(2000);
    // Nothing half-done: the agent does not exist, and everything works again (the first token
    // after the failure waits for its record, which now commits).
    expect((await kw.admin("GET", "/agents/later")).status).toBe(404);
    expect((await call(second)).status).toBe(200);
    expect((await kw.admin("GET", "/audit/verify")).body.ok).toBe(true);
  });

  it("with audit_fail_closed=false, changes and calls go on and the failure is counted", async () => {
    const { kw, secret } = await setup({ KEYWARD_AUDIT_FAIL_CLOSED: "false" });
    const restore = breakAudit(kw.dataDir);
    try {
      expect((await kw.admin("POST", "/agents", { name: "later", upstream: "http://127.0.0.1:1" })).status).toBe(201);
      expect((await fetch(`${kw.url}/agents/echo/x`, { headers: { "x-api-key": secret } })).status).toBe(200);
      await waitForAuditFailure(kw.url);
    } finally {
      restore();
    }
  });
});
