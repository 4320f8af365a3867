// The cases every transport must pass: a change made through replica A is seen by B and C on their
// next requests. The reconcile interval is set far beyond the deadlines, so only the pub/sub path
// (Redis, or LISTEN/NOTIFY) can make these pass.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUpstream } from "../../packages/server/test-support/upstream.js";
import {
  freshSchema,
  newKey,
  type Replica,
  setUpGateway,
  skipReason,
  startReplicas,
  stopAll,
  until,
} from "./harness.js";

/** Far below the reconcile interval used here (60 s): only a delivered message can meet it. */
const DEADLINE_MS = 2000;

export function propagationCases(label: string, opts: { redis: boolean; env: () => Record<string, string> }): void {
  const skip = skipReason({ redis: opts.redis });
  if (skip) console.warn(`[replicas] ${label} skipped: ${skip}`);

  describe.skipIf(skip !== undefined)(label, () => {
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
        KEYWARD_RECONCILE_INTERVAL_MS: "60000",
        KEYWARD_MAX_STALENESS_MS: "120000",
        ...opts.env(),
      })) as [Replica, Replica, Replica];
      await setUpGateway(a, up.url);
    });

    afterAll(async () => {
      await stopAll();
      await up?.close();
      await schema?.drop();
    });

    /** The key passes on B and C, so each holds it in its cache. */
    async function warm(secret: string, agent = "echo"): Promise<void> {
      for (const r of [b, c]) expect(await r.call(secret, agent)).toEqual({ status: 200, code: undefined });
    }

    async function seenEverywhere(secret: string, expected: { status: number; code?: string }, agent = "echo") {
      const want = { status: expected.status, code: expected.code };
      for (const r of [a, b, c]) {
        const got = await until(
          `${r.name} answers ${JSON.stringify(want)}`,
          () => r.call(secret, agent),
          (v) => v.status === want.status && v.code === want.code,
          DEADLINE_MS,
        );
        expect(got).toEqual(want);
      }
    }

    function published(res: { status: number; headers: Headers }, status: number): void {
      expect(res.status).toBe(status);
      // Telling the other replicas worked: nothing is left to reconciliation.
      expect(res.headers.get("keyward-propagation")).toBeNull();
    }

    it("a key revoked on A is refused on A at once and on B and C", async () => {
      const k = await newKey(a);
      await warm(k.secret);
      published(await a.admin("POST", `/keys/${k.id}/revoke`), 200);
      expect(await a.call(k.secret)).toEqual({ status: 401, code: "key_revoked" });
      await seenEverywhere(k.secret, { status: 401, code: "key_revoked" });
    });

    it("a rotation ends the old key on every replica and the new one works everywhere", async () => {
      const k = await newKey(a);
      await warm(k.secret);
      const rotated = await a.admin("POST", `/keys/${k.id}/rotate`, { grace_s: 0 });
      published(rotated, 201);
      await seenEverywhere(k.secret, { status: 401, code: "key_expired" });
      await seenEverywhere(rotated.body.secret, { status: 200 });
    });

    it("freeze and unfreeze reach every replica", async () => {
      const k = await newKey(a);
      await warm(k.secret);
      published(await a.admin("POST", `/keys/${k.id}/freeze`), 200);
      await seenEverywhere(k.secret, { status: 401, code: "key_frozen" });
      published(await a.admin("POST", `/keys/${k.id}/unfreeze`), 200);
      await seenEverywhere(k.secret, { status: 200 });
    });

    it("narrowed scopes reach every replica", async () => {
      const k = await newKey(a);
      await warm(k.secret);
      published(await a.admin("PATCH", `/keys/${k.id}`, { scopes: ["agent:other"] }), 200);
      await seenEverywhere(k.secret, { status: 403, code: "scope_denied" });
    });

    it("deleting an agent removes it everywhere and revokes its own keys everywhere", async () => {
      published(await a.admin("POST", "/agents", { name: "doomed", upstream: up.url }), 201);
      const caller = await newKey(a);
      const own = await newKey(a, "agent:doomed");
      await warm(caller.secret, "doomed");
      await warm(own.secret);
      const res = await a.admin("DELETE", "/agents/doomed");
      published(res, 204);
      await seenEverywhere(caller.secret, { status: 404, code: "agent_not_found" }, "doomed");
      await seenEverywhere(own.secret, { status: 401, code: "key_revoked" });
    });

    it("deleting a consumer revokes its keys on every replica", async () => {
      published(await a.admin("POST", "/consumers", { name: "leaving" }), 201);
      const keys = [await newKey(a, "consumer:leaving"), await newKey(a, "consumer:leaving")];
      for (const k of keys) await warm(k.secret);
      published(await a.admin("DELETE", "/consumers/leaving"), 204);
      for (const k of keys) await seenEverywhere(k.secret, { status: 401, code: "key_revoked" });
    });

    it("a signing-key rotation on A reaches the JWKS of B and C", async () => {
      const res = await a.admin("POST", "/signing-keys/rotate");
      expect(res.status).toBe(201);
      const kid = (res.body.keys as Array<{ kid: string; active: boolean }>).find((k) => k.active)?.kid;
      expect(kid).toBeDefined();
      for (const r of [b, c]) {
        await until(
          `${r.name} publishes the new signing key`,
          async () =>
            (await (await fetch(`${r.url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> },
          (jwks) => jwks.keys.some((k) => k.kid === kid),
          DEADLINE_MS,
        );
      }
    });

    it("an agent created on A is found on B and C, which had cached its absence", async () => {
      const k = await newKey(a);
      for (const r of [b, c]) expect(await r.call(k.secret, "late")).toEqual({ status: 404, code: "agent_not_found" });
      published(await a.admin("POST", "/agents", { name: "late", upstream: up.url }), 201);
      await seenEverywhere(k.secret, { status: 200 }, "late");
    });
  });
}
