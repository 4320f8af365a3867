// Replica A is killed with SIGKILL in the middle of a burst of admin writes. Whatever A
// acknowledged must be there afterwards, seen from B and C: durable in PostgreSQL, and its
// invalidation applied everywhere (a revocation A acknowledged but never got to publish is still
// picked up by reconciliation from the change log).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUpstream } from "../../packages/server/test-support/upstream.js";
import {
  freshSchema,
  newKey,
  type Replica,
  redisUrl,
  setUpGateway,
  skipReason,
  startReplicas,
  stopAll,
  until,
} from "./harness.js";

const RECONCILE_MS = 300;
const skip = skipReason({ redis: true });
if (skip) console.warn(`[replicas] crash tests skipped: ${skip}`);

describe.skipIf(skip !== undefined)("kill -9 of a replica during a burst of admin writes", () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let a: Replica;
  let b: Replica;
  let c: Replica;

  beforeAll(async () => {
    schema = await freshSchema();
    up = await startUpstream();
    [a, b, c] = (await startReplicas(["a", "b", "c"], {
      KEYWARD_DATABASE_URL: schema.url,
      KEYWARD_REDIS_URL: redisUrl as string,
      KEYWARD_RECONCILE_INTERVAL_MS: String(RECONCILE_MS),
    })) as [Replica, Replica, Replica];
    await setUpGateway(a, up.url);
  });

  afterAll(async () => {
    await stopAll();
    await up?.close();
    await schema?.drop();
  });

  it("keeps every acknowledged write, and every committed revocation holds on the survivors", async () => {
    const keys = await Promise.all(Array.from({ length: 30 }, () => newKey(a)));
    for (const k of keys) {
      for (const r of [b, c]) expect((await r.call(k.secret)).status).toBe(200);
    }

    // Writers keep A busy: consumers created and keys revoked, 8 at a time.
    const created: string[] = [];
    const revoked: Array<{ id: string; secret: string }> = [];
    let next = 0;
    let killed = false;
    const writer = async () => {
      while (!killed) {
        const i = next++;
        const k = keys[i];
        try {
          if (k && i % 2 === 0) {
            const res = await a.admin("POST", `/keys/${k.id}/revoke`);
            if (res.status === 200) revoked.push(k);
          } else {
            const name = `burst-${i}`;
            const res = await a.admin("POST", "/consumers", { name });
            if (res.status === 201) created.push(name);
          }
        } catch {
          // The connection died with A: not acknowledged, so nothing is promised about it.
        }
      }
    };
    const writers = Array.from({ length: 8 }, writer);
    await until(
      "a burst is under way",
      async () => created.length + revoked.length,
      (n) => n >= 30,
      10_000,
    );
    a.child.kill("SIGKILL");
    killed = true;
    await a.exited;
    await Promise.all(writers);
    expect(revoked.length).toBeGreaterThan(0);

    for (const name of created) expect((await b.admin("GET", `/consumers/${name}`)).status).toBe(200);
    // Beyond what A acknowledged: every revocation that committed (A may have died after the
    // commit, before publishing or answering) is enforced everywhere, by reconciliation if need be.
    const committed: Array<{ id: string; secret: string }> = [];
    for (const k of keys) {
      if ((await b.admin("GET", `/keys/${k.id}`)).body.status === "revoked") committed.push(k);
    }
    expect(committed.map((k) => k.id)).toEqual(expect.arrayContaining(revoked.map((k) => k.id)));
    for (const k of committed) {
      for (const r of [b, c]) {
        await until(
          `${r.name} refuses ${k.id}`,
          () => r.call(k.secret),
          (v) => v.status === 401 && v.code === "key_revoked",
          5 * RECONCILE_MS + 1000,
        );
      }
    }
    const verify = await b.admin("GET", "/audit/verify");
    expect(verify.body.ok).toBe(true);
  });
});
