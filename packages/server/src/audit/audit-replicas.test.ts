import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { frozenClock } from "../clock.js";
import { silentLogger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import { migrate } from "../store/migrations.js";
import { openPostgres } from "../store/postgres.js";
import { createAuditLog } from "./audit-log.js";

const pgUrl = process.env.KEYWARD_TEST_DATABASE_URL;

/** Two replicas: two AuditLogs, each with its own connection pool, on one PostgreSQL schema. */
describe.skipIf(!pgUrl)("audit log on two PostgreSQL replicas", () => {
  const schema = `kwt_${randomBytes(6).toString("hex")}`;
  let a: Db;
  let b: Db;

  beforeAll(async () => {
    a = await openPostgres(pgUrl!, { schema, max: 4 });
    await migrate(a);
    b = await openPostgres(pgUrl!, { schema, max: 4 });
  });
  afterAll(async () => {
    await b?.close();
    await a?.exec(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
    await a?.close();
  });

  it("interleaves both replicas' batches into one dense, valid chain", async () => {
    const replicaA = createAuditLog({ db: a, clock: frozenClock(), logger: silentLogger() });
    const replicaB = createAuditLog({ db: b, clock: frozenClock(), logger: silentLogger() });
    const writes: Promise<void>[] = [];
    for (let wave = 0; wave < 20; wave++) {
      for (let i = 0; i < 10; i++) {
        writes.push(replicaA.record({ actor: "replica:a", action: "gateway.deny", outcome: "denied" }));
        writes.push(replicaB.record({ actor: "replica:b", action: "gateway.deny", outcome: "denied" }));
      }
      await new Promise<void>((r) => setImmediate(r));
    }
    await Promise.all(writes);
    await Promise.all([replicaA.close(), replicaB.close()]);

    expect(await replicaA.verify()).toMatchObject({ ok: true, count: 400 });
    expect(await replicaB.verify()).toEqual(await replicaA.verify());
    const rows = await a.query<{ seq: number; actor: string }>("SELECT seq, actor FROM audit_events ORDER BY seq");
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    // Both replicas really wrote while the other one did: their runs alternate in the chain.
    const runs = rows.filter((r, i) => i === 0 || rows[i - 1]?.actor !== r.actor).length;
    expect(runs).toBeGreaterThan(2);
  });
});
