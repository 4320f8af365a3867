// Replica C loses PostgreSQL (a relay between them is cut) while A keeps it. C goes on verifying
// the keys it has cached, but only for max_staleness_ms: after that it cannot know what it missed
// and refuses with 503 until the store is back. Admin writes on C fail with 503 and leave nothing
// behind. A revocation made on A meanwhile still reaches C through Redis.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRelay } from "../../packages/server/src/test-support/tcp-relay.js";
import { startUpstream } from "../../packages/server/src/test-support/upstream.js";
import {
  freshSchema,
  newKey,
  pgUrl,
  type Replica,
  redisUrl,
  setUpGateway,
  skipReason,
  startReplica,
  stopAll,
  until,
} from "./harness.js";

const RECONCILE_MS = 200;
const MAX_STALENESS_MS = 2500;
const skip = skipReason({ redis: true });
if (skip) console.warn(`[replicas] PostgreSQL outage tests skipped: ${skip}`);

describe.skipIf(skip !== undefined)("a replica cut off from PostgreSQL", () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  let a: Replica;
  let c: Replica;

  beforeAll(async () => {
    schema = await freshSchema();
    up = await startUpstream();
    const target = new URL(pgUrl as string);
    relay = await startRelay({ host: target.hostname, port: Number(target.port || 5432) });
    const env = {
      KEYWARD_REDIS_URL: redisUrl as string,
      KEYWARD_RECONCILE_INTERVAL_MS: String(RECONCILE_MS),
      KEYWARD_MAX_STALENESS_MS: String(MAX_STALENESS_MS),
    };
    [a, c] = await Promise.all([
      startReplica("a", { ...env, KEYWARD_DATABASE_URL: schema.url }),
      startReplica("c", { ...env, KEYWARD_DATABASE_URL: schema.urlVia("127.0.0.1", relay.port) }),
    ]);
    await setUpGateway(a, up.url);
  });

  afterAll(async () => {
    await stopAll();
    await relay?.close();
    await up?.close();
    await schema?.drop();
  });

  it("verifies cached keys for a bounded time, refuses writes with 503, and recovers", async () => {
    const cached = await newKey(a);
    const revokedMeanwhile = await newKey(a);
    for (const k of [cached, revokedMeanwhile]) expect((await c.call(k.secret)).status).toBe(200);
    const auditBefore = (await a.admin("GET", "/audit/verify")).body.count as number;

    await relay.cut();
    try {
      // Memory only: the cached key still passes.
      expect(await c.call(cached.secret)).toEqual({ status: 200, code: undefined });

      // A write on C cannot reach the store: 503, and nothing of it exists afterwards.
      const write = await c.admin("POST", "/agents", { name: "half", upstream: up.url });
      expect(write.status).toBe(503);
      expect(write.body.error.code).toBe("store_unavailable");
      const revokeOnC = await c.admin("POST", `/keys/${cached.id}/revoke`);
      expect(revokeOnC.status).toBe(503);

      // Revoked on A: the message still reaches C through Redis, and C does not fall back on
      // what it had cached (it cannot read the key again, so: 503, not 200).
      expect((await a.admin("POST", `/keys/${revokedMeanwhile.id}/revoke`)).status).toBe(200);
      const afterRevoke = await until(
        "c stops admitting the key revoked on a",
        () => c.call(revokedMeanwhile.secret),
        (v) => v.status !== 200,
        2000,
      );
      expect(afterRevoke).toEqual({ status: 503, code: "store_unavailable" });
      // That was the message, not the staleness bound: the other cached key still passes.
      expect(await c.call(cached.secret)).toEqual({ status: 200, code: undefined });

      // The bound: past max_staleness_ms without reading the change log, C drops its caches.
      const bounded = await until(
        "c stops trusting its cache",
        () => c.call(cached.secret),
        (v) => v.status !== 200,
        MAX_STALENESS_MS + 4 * RECONCILE_MS + 2000,
      );
      expect(bounded).toEqual({ status: 503, code: "store_unavailable" });
    } finally {
      await relay.restore();
    }

    // Back by itself: the cached key passes again, the revoked one stays refused.
    await until(
      "c verifies again",
      () => c.call(cached.secret),
      (v) => v.status === 200,
      10_000,
    );
    expect(await c.call(revokedMeanwhile.secret)).toEqual({ status: 401, code: "key_revoked" });
    expect((await a.admin("GET", "/agents/half")).status).toBe(404);
    expect((await a.admin("GET", `/keys/${cached.id}`)).body.status).toBe("active");
    const verify = (await a.admin("GET", "/audit/verify")).body;
    expect(verify.ok).toBe(true);
    // The revocation made on A during the outage landed with its record; the chain is intact.
    expect(verify.count).toBeGreaterThanOrEqual(auditBefore + 1);
    const onC = await c.admin("POST", "/agents", { name: "after", upstream: up.url });
    expect(onC.status).toBe(201);
    expect(c.child.exitCode).toBeNull();
  });
});
