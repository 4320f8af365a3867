import type { Db, SqlValue } from "../store/db.js";
import type { AlertSeverity, AlertStatus } from "./alert-types.js";

export interface AlertRow {
  id: string;
  rule: string;
  severity: AlertSeverity;
  status: AlertStatus;
  key_id: string | null;
  created_at: number;
  evidence: string; // JSON object
  dedup_key: string;
  acked_at: number | null;
  acked_by: string | null;
}

const COLS = "id, rule, severity, status, key_id, created_at, evidence, dedup_key, acked_at, acked_by";

export interface AlertFilter {
  status?: AlertStatus | undefined;
  severity?: AlertSeverity | undefined;
  keyId?: string | undefined;
}

/** Newest first: the cursor is the last row's `created_at` and id. */
export interface AlertCursor {
  createdAt: number;
  id: string;
}

export function createAlertsStore(db: Db) {
  return {
    /**
     * Claims the incident (rule, dedupKey) until `until`, unless a claim made by someone else is
     * still in its cooldown. One statement, so replicas racing on one incident serialize on its row
     * and exactly one sees a change (PostgreSQL re-checks the WHERE on the row it waited for).
     */
    async claimIncident(tx: Db, rule: string, dedupKey: string, alertId: string, now: number, until: number) {
      const changed = await tx.exec(
        `INSERT INTO alert_incidents (rule, dedup_key, alert_id, until_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (rule, dedup_key) DO UPDATE SET alert_id = excluded.alert_id, until_at = excluded.until_at
         WHERE alert_incidents.until_at <= $5`,
        [rule, dedupKey, alertId, until, now],
      );
      return changed > 0;
    },
    /** Drops incidents whose cooldown ended (a new raise would claim them anyway); alerts stay. */
    async pruneIncidents(now: number): Promise<void> {
      await db.exec("DELETE FROM alert_incidents WHERE until_at < $1", [now]);
    },
    async insert(tx: Db, a: AlertRow): Promise<void> {
      await tx.exec(`INSERT INTO alerts (${COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`, [
        a.id,
        a.rule,
        a.severity,
        a.status,
        a.key_id,
        a.created_at,
        a.evidence,
        a.dedup_key,
        a.acked_at,
        a.acked_by,
      ]);
    },
    async get(id: string): Promise<AlertRow | undefined> {
      return (await db.query<AlertRow>(`SELECT ${COLS} FROM alerts WHERE id = $1`, [id]))[0];
    },
    /** Marks an open alert acked: whether this call acked it, and the row (undefined: no such alert). */
    async ack(tx: Db, id: string, by: string, now: number): Promise<{ acked: boolean; row: AlertRow | undefined }> {
      const acked = await tx.exec(
        "UPDATE alerts SET status = 'acked', acked_at = $2, acked_by = $3 WHERE id = $1 AND status = 'open'",
        [id, now, by],
      );
      const row = (await tx.query<AlertRow>(`SELECT ${COLS} FROM alerts WHERE id = $1`, [id]))[0];
      return { acked: acked > 0, row };
    },
    async list(filter: AlertFilter, after: AlertCursor | undefined, limit: number): Promise<AlertRow[]> {
      const where: string[] = [];
      const params: SqlValue[] = [];
      const add = (sql: string, v: SqlValue) => {
        params.push(v);
        where.push(sql.replace("?", `$${params.length}`));
      };
      if (filter.status) add("status = ?", filter.status);
      if (filter.severity) add("severity = ?", filter.severity);
      if (filter.keyId) add("key_id = ?", filter.keyId);
      if (after) {
        params.push(after.createdAt, after.id);
        const [t, i] = [params.length - 1, params.length];
        where.push(`(created_at < $${t} OR (created_at = $${t} AND id < $${i}))`);
      }
      params.push(limit + 1);
      const clause = where.length > 0 ? `WHERE ${where.join(" AND ")}` : "";
      return db.query<AlertRow>(
        `SELECT ${COLS} FROM alerts ${clause} ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
        params,
      );
    },
  };
}

export type AlertsStore = ReturnType<typeof createAlertsStore>;
