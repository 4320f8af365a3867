import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { openTestSqlite } from "../../test-support/databases.js";
import { frozenClock } from "../clock.js";
import { KeywardError } from "../errors.js";
import { sendError } from "../http/respond.js";
import { createContext, Router } from "../http/router.js";
import { silentLogger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import { type AuditLog, createAuditLog } from "./audit-log.js";
import { parseInstant, registerAuditRoutes } from "./audit-routes.js";

const ADMIN = "test-admin-token-000000000000000000";
const T0 = Date.UTC(2026, 0, 1);

/** A minimal stand-in for http/server.ts: route, run, turn KeywardErrors into the error body. */
function serve(router: Router): Server {
  return createServer((req, res) => {
    const ctx = createContext(req, res);
    void (async () => {
      const { handler, params } = router.match(ctx.method, ctx.path);
      ctx.params = params;
      await handler(ctx);
    })().catch((err: unknown) => {
      if (err instanceof KeywardError) sendError(res, err.code, err.message, ctx.requestId);
      else sendError(res, "internal_error", "internal error", ctx.requestId);
    });
  });
}

describe("audit routes", () => {
  let db: Db;
  let audit: AuditLog;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    db = await openTestSqlite();
    const clock = frozenClock(T0);
    audit = createAuditLog({ db, clock, logger: silentLogger() });
    for (let i = 0; i < 5; i++) {
      await audit.record({
        actor: "admin:root",
        action: i % 2 ? "key.revoke" : "key.create",
        target: `key_${i}`,
        outcome: "success",
      });
      clock.advance(60_000);
    }
    const router = new Router();
    registerAuditRoutes(router, {
      audit,
      requireAdmin: async (ctx) => {
        if (ctx.req.headers.authorization !== `Bearer ${ADMIN}`)
          throw new KeywardError("unauthorized", "admin token required");
        return "admin:root";
      },
    });
    server = serve(router);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await audit.close();
    await db.close();
  });

  const get = async (path: string, token: string | null = ADMIN) => {
    const res = await fetch(base + path, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it("requires an admin before anything else", async () => {
    expect(await get("/admin/v1/audit", null)).toMatchObject({
      status: 401,
      body: { error: { code: "unauthorized" } },
    });
    expect(await get("/admin/v1/audit/verify", "wrong")).toMatchObject({ status: 401 });
    expect(await get("/admin/v1/audit?limit=oops", null)).toMatchObject({ status: 401 });
  });

  it("lists events newest first, with filters and a cursor", async () => {
    const first = await get("/admin/v1/audit?limit=2&action=key.create");
    expect(first.status).toBe(200);
    expect(first.body.events).toEqual([
      expect.objectContaining({ seq: 5, action: "key.create", target: "key_4" }),
      expect.objectContaining({ seq: 3, time: "2026-01-01T00:02:00.000Z" }),
    ]);
    const next = await get(`/admin/v1/audit?limit=2&action=key.create&cursor=${first.body.next_cursor}`);
    expect(next.body).toEqual({ events: [expect.objectContaining({ seq: 1 })], next_cursor: null });
  });

  it("takes since and until as RFC 3339 or epoch milliseconds", async () => {
    const rfc = await get("/admin/v1/audit?since=2026-01-01T00:01:00Z&until=2026-01-01T01:03:00%2B01:00");
    expect((rfc.body.events as { seq: number }[]).map((e) => e.seq)).toEqual([3, 2]);
    const ms = await get(`/admin/v1/audit?since=${T0 + 60_000}&until=${T0 + 180_000}`);
    expect(ms.body).toEqual(rfc.body);
    const principal = await get("/admin/v1/audit?principal=key_1");
    expect((principal.body.events as { seq: number }[]).map((e) => e.seq)).toEqual([2]);
  });

  it("answers invalid_request for a bad query", async () => {
    for (const q of [
      "limit=0",
      "limit=1001",
      "limit=1.5",
      "since=yesterday",
      "since=2026-02-30T00:00:00Z",
      "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
      "cursor=garbage",
      "actor=admin:root",
    ]) {
      const r = await get(`/admin/v1/audit?${q}`);
      expect({ q, status: r.status, code: (r.body.error as { code: string }).code }).toEqual({
        q,
        status: 400,
        code: "invalid_request",
      });
    }
  });

  it("defaults to 100 events a page", async () => {
    for (let i = 0; i < 120; i++)
      audit.recordLater({ actor: "consumer:acme", action: "gateway.deny", outcome: "denied" });
    await audit.flush();
    const r = await get("/admin/v1/audit");
    expect(r.body.events).toHaveLength(100);
    expect(r.body.next_cursor).toEqual(expect.any(String));
  });

  describe("verify", () => {
    beforeEach(async () => {
      await db.exec("UPDATE audit_events SET outcome = 'success' WHERE seq = 2");
    });

    it("reports an intact chain with its count and head", async () => {
      const r = await get("/admin/v1/audit/verify");
      expect(r).toEqual({
        status: 200,
        body: { ok: true, count: expect.any(Number), head: expect.stringMatching(/^[0-9a-f]{64}$/) },
      });
    });

    it("reports the first broken seq once a row was altered", async () => {
      await db.exec("UPDATE audit_events SET outcome = 'denied' WHERE seq = 2");
      const r = await get("/admin/v1/audit/verify");
      expect(r).toEqual({ status: 200, body: { ok: false, reason: "altered", first_broken_seq: 2, count: 1 } });
    });

    it("judges the chain against a checkpoint: shorter than it is truncated, another hash is a rollback", async () => {
      const intact = (await get("/admin/v1/audit/verify")).body as { count: number; head: string };
      const later = `/admin/v1/audit/verify?checkpoint_seq=${intact.count + 3}&checkpoint_head=${"a".repeat(64)}`;
      expect(await get(later)).toEqual({
        status: 200,
        body: {
          ok: false,
          reason: "truncated",
          first_broken_seq: intact.count + 1,
          count: intact.count,
          anchor: "checkpoint",
        },
      });
      const other = `/admin/v1/audit/verify?checkpoint_seq=${intact.count}&checkpoint_head=${"b".repeat(64)}`;
      expect(await get(other)).toMatchObject({
        status: 200,
        body: { ok: false, reason: "rolled_back", anchor: "checkpoint" },
      });
      const same = `/admin/v1/audit/verify?checkpoint_seq=${intact.count}&checkpoint_head=${intact.head}`;
      expect(await get(same)).toMatchObject({ status: 200, body: { ok: true, count: intact.count } });
    });

    it("refuses a half checkpoint, a malformed head and a MAC it cannot check, as invalid_request", async () => {
      for (const q of [
        "checkpoint_seq=1",
        `checkpoint_head=${"a".repeat(64)}`,
        "checkpoint_seq=1&checkpoint_head=XYZ",
        `checkpoint_seq=0&checkpoint_head=${"a".repeat(64)}`,
        `checkpoint_seq=1&checkpoint_head=${"a".repeat(64)}&checkpoint_mac=${"c".repeat(64)}`,
        "since=1",
      ]) {
        expect(await get(`/admin/v1/audit/verify?${q}`)).toMatchObject({
          status: 400,
          body: { error: { code: "invalid_request" } },
        });
      }
    });
  });
});

describe("parseInstant", () => {
  it("reads RFC 3339 with any offset, and epoch ms", () => {
    expect(parseInstant("2026-01-01T00:00:00Z")).toBe(T0);
    expect(parseInstant("2026-01-01t01:00:00.5+01:00")).toBe(T0 + 500);
    expect(parseInstant(String(T0))).toBe(T0);
  });

  it("refuses what is neither, or names no real time", () => {
    for (const s of [
      "",
      "2026-01-01",
      "2026-01-01 00:00:00Z",
      "2026-13-01T00:00:00Z",
      "2026-01-01T24:00:00Z",
      "-1",
      "1e3",
    ]) {
      expect(parseInstant(s)).toBeUndefined();
    }
  });
});
