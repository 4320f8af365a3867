// Redis, the replicas' messenger, dies mid-test and comes back. Revocations made meanwhile still
// reach every replica (by reconciliation from PostgreSQL, within the interval), the admin response
// says they are pending, no revoked key is admitted afterwards, and the replicas go back to pub/sub
// by themselves once Redis is back.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUpstream } from "../../packages/server/src/test-support/upstream.js";
import {
  freshSchema,
  newKey,
  type Replica,
  setUpGateway,
  skipReason,
  startRedisServer,
  startReplicas,
  stopAll,
  stopRedisServers,
  until,
} from "./harness.js";

const RECONCILE_MS = 300;
const skip = skipReason({ redisServer: true });
if (skip) console.warn(`[replicas] Redis outage tests skipped: ${skip}`);

describe.skipIf(skip !== undefined)("three replicas, Redis stopped and restarted", () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let redis: Awaited<ReturnType<typeof startRedisServer>>;
  let replicas: Replica[];
  let a: Replica;

  beforeAll(async () => {
    schema = await freshSchema();
    up = await startUpstream();
    redis = await startRedisServer();
    replicas = await startReplicas(["a", "b", "c"], {
      KEYWARD_DATABASE_URL: schema.url,
      KEYWARD_REDIS_URL: redis.url,
      KEYWARD_RECONCILE_INTERVAL_MS: String(RECONCILE_MS),
      KEYWARD_MAX_STALENESS_MS: "30000",
      KEYWARD_LOG_LEVEL: "info",
    });
    a = replicas[0] as Replica;
    await setUpGateway(a, up.url);
  });

  afterAll(async () => {
    await stopAll();
    await stopRedisServers();
    await up?.close();
    await schema?.drop();
  });

  const refusedEverywhere = async (secret: string, code: string, deadlineMs: number) => {
    for (const r of replicas) {
      await until(
        `${r.name} refuses with ${code}`,
        () => r.call(secret),
        (v) => v.status === 401 && v.code === code,
        deadlineMs,
      );
    }
  };

  it("revocations during the outage reach every replica by reconciliation; pub/sub resumes by itself", async () => {
    const before = await newKey(a);
    const during = await newKey(a);
    const frozen = await newKey(a);
    const after = await newKey(a);
    for (const k of [before, during, frozen, after]) {
      for (const r of replicas) expect((await r.call(k.secret)).status).toBe(200);
    }

    const res = await a.admin("POST", `/keys/${before.id}/revoke`);
    expect(res.headers.get("keyward-propagation")).toBeNull();
    await refusedEverywhere(before.secret, "key_revoked", 2000);

    await redis.kill();

    // Committed and durable, but the other replicas could not be told: the response says so.
    const revoked = await a.admin("POST", `/keys/${during.id}/revoke`);
    expect(revoked.status).toBe(200);
    expect(revoked.headers.get("keyward-propagation")).toBe("pending");
    expect(await a.call(during.secret)).toEqual({ status: 401, code: "key_revoked" });
    const froze = await a.admin("POST", `/keys/${frozen.id}/freeze`);
    expect(froze.status).toBe(200);
    expect(froze.headers.get("keyward-propagation")).toBe("pending");
    // Reconciliation runs every 300 ms; allow for two rounds and a slow machine.
    await refusedEverywhere(during.secret, "key_revoked", 5 * RECONCILE_MS + 1000);
    await refusedEverywhere(frozen.secret, "key_frozen", 5 * RECONCILE_MS + 1000);

    await redis.start();

    // Recovery needs nothing from us: a harmless change stops being "pending" once the replicas
    // have reconnected.
    await until(
      "admin changes publish again",
      () => a.admin("PATCH", "/agents/echo", { description: `probe ${Date.now()}` }),
      (r) => r.status === 200 && r.headers.get("keyward-propagation") === null,
      10_000,
    );
    // Every replica has resubscribed by itself (each logs it once per outage).
    for (const r of replicas) {
      await until(
        `${r.name} resubscribed`,
        async () => r.stderr().includes('"connection":"sub","msg":"redis reachable again"'),
        (v) => v,
        10_000,
      );
    }
    const last = await a.admin("POST", `/keys/${after.id}/revoke`);
    expect(last.headers.get("keyward-propagation")).toBeNull();
    await refusedEverywhere(after.secret, "key_revoked", 2000);
    for (const [k, code] of [
      [before, "key_revoked"],
      [during, "key_revoked"],
      [frozen, "key_frozen"],
    ] as const) {
      for (const r of replicas) expect(await r.call(k.secret)).toEqual({ status: 401, code });
    }
    // No replica crashed along the way.
    for (const r of replicas) expect(r.child.exitCode).toBeNull();
  });
});
