import { randomBytes } from "node:crypto";
import { AUDIT_APPEND_LOCK } from "../store/advisory-locks.js";
import type { Db } from "../store/db.js";
import type { Change, ChangeKind } from "./change-feed.js";

export interface ChangeRow {
  seq: number;
  kind: ChangeKind;
  ref: string;
}

/**
 * The change log (`changes`), PostgreSQL only: one row per change, `seq` dense and in commit order.
 *
 * Why commit order needs a lock: a reader applies every row with `seq > last` and then moves `last`
 * on. With seq from a sequence, a transaction could take seq 7, commit after another that took 8,
 * and a reader that already moved past 8 would never see 7. Here seq is `MAX(seq) + 1` read under a
 * transaction-level advisory lock that is held until commit, so no transaction can take a seq until
 * every lower one has committed or rolled back (a rollback frees its seq for the next one: no gaps).
 * The lock is the audit chain's append lock: an admin change already holds it once its audit record
 * is written, so the change log adds no second lock to wait for (and no lock-order deadlock).
 */
export function createChangesStore(db: Db) {
  return {
    /** Inside the change's transaction; returns the change's seq. */
    async append(tx: Db, change: Change, now: number): Promise<number> {
      await tx.query("SELECT pg_advisory_xact_lock($1)", [AUDIT_APPEND_LOCK]);
      const rows = await tx.query<{ seq: number }>(
        "INSERT INTO changes (seq, kind, ref, time) SELECT COALESCE(MAX(seq), 0) + 1, $1, $2, $3 FROM changes RETURNING seq",
        [change.kind, change.ref, now],
      );
      return Number(rows[0]?.seq);
    },

    /** The highest committed seq (0 for an empty log). */
    async head(): Promise<number> {
      const rows = await db.query<{ seq: number | null }>("SELECT MAX(seq) AS seq FROM changes");
      return Number(rows[0]?.seq ?? 0);
    },

    /** Committed changes after `seq`, oldest first. */
    async after(seq: number, limit: number): Promise<ChangeRow[]> {
      const rows = await db.query<ChangeRow>(
        "SELECT seq, kind, ref FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        [seq, limit],
      );
      return rows.map((r) => ({ seq: Number(r.seq), kind: r.kind, ref: r.ref }));
    },

    /**
     * Drops rows older than `before`, but never the newest row: seq continues from MAX(seq), so an
     * emptied table would hand out seqs that replicas have already applied.
     */
    prune(before: number): Promise<number> {
      return db.exec("DELETE FROM changes WHERE time < $1 AND seq < (SELECT MAX(seq) FROM changes)", [before]);
    },

    /**
     * A random id for this database, created by the first replica: it names the pub/sub channel,
     * so clusters sharing one Redis (or schemas sharing one PostgreSQL database) never hear each other.
     */
    async clusterId(): Promise<string> {
      await db.exec("INSERT INTO meta (key, value) VALUES ('cluster_id', $1) ON CONFLICT (key) DO NOTHING", [
        randomBytes(8).toString("hex"),
      ]);
      const rows = await db.query<{ value: string }>("SELECT value FROM meta WHERE key = 'cluster_id'");
      const id = rows[0]?.value;
      if (!id || !/^[0-9a-f]{16}$/.test(id)) throw new Error("meta.cluster_id is missing or malformed");
      return id;
    },
  };
}

export type ChangesStore = ReturnType<typeof createChangesStore>;
