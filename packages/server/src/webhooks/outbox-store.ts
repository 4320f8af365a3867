import type { Db } from "../store/db.js";

export type DeliveryStatus = "pending" | "delivered" | "failed";

export interface OutboxRow {
  id: string;
  event_id: string;
  endpoint_id: string;
  endpoint_url: string;
  type: string;
  body: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  lease_owner: string | null;
  lease_until: number | null;
  created_at: number;
  updated_at: number;
  delivered_at: number | null;
}

const COLUMNS =
  "id, event_id, endpoint_id, endpoint_url, type, body, status, attempts, next_attempt_at, last_error, lease_owner, lease_until, created_at, updated_at, delivered_at";

function toRow(r: Record<string, unknown>): OutboxRow {
  const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    ...(r as unknown as OutboxRow),
    attempts: Number(r.attempts),
    next_attempt_at: Number(r.next_attempt_at),
    lease_until: n(r.lease_until),
    created_at: Number(r.created_at),
    updated_at: Number(r.updated_at),
    delivered_at: n(r.delivered_at),
  };
}

/** The outbox's SQL (webhooks-migration.ts describes the table and its leases). */
export function createOutboxStore(db: Db) {
  return {
    /** Enqueues in `tx` (the transaction of the change the event announces, when there is one). */
    async insert(tx: Db, row: OutboxRow): Promise<void> {
      await tx.exec(
        `INSERT INTO webhook_outbox (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
        [
          ...[row.id, row.event_id, row.endpoint_id, row.endpoint_url, row.type, row.body, row.status],
          ...[row.attempts, row.next_attempt_at, row.last_error, row.lease_owner, row.lease_until],
          ...[row.created_at, row.updated_at, row.delivered_at],
        ],
      );
    },

    /** Pending rows of one endpoint that are due and not leased, oldest first. */
    async due(endpointId: string, now: number, limit: number): Promise<OutboxRow[]> {
      const rows = await db.query(
        `SELECT ${COLUMNS} FROM webhook_outbox
         WHERE status = 'pending' AND endpoint_id = $1 AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2)
         ORDER BY next_attempt_at, id LIMIT $3`,
        [endpointId, now, limit],
      );
      return rows.map(toRow);
    },

    /**
     * Takes the lease of one row if nobody holds it: a conditional UPDATE, so of two replicas
     * racing for a row exactly one changes it. Counts the attempt now, so a delivery that crashes
     * the process still counts.
     */
    async claim(id: string, owner: string, now: number, until: number): Promise<boolean> {
      const changed = await db.exec(
        `UPDATE webhook_outbox SET lease_owner = $2, lease_until = $4, attempts = attempts + 1, updated_at = $3
         WHERE id = $1 AND status = 'pending' AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $3)`,
        [id, owner, now, until],
      );
      return changed === 1;
    },

    /** Settles a row this replica holds; a lease lost meanwhile (expired, reclaimed) changes nothing. */
    async settle(
      id: string,
      owner: string,
      now: number,
      outcome:
        | { status: "delivered" }
        | { status: "pending"; nextAttemptAt: number; error: string }
        | { status: "failed"; error: string },
    ): Promise<boolean> {
      const delivered = outcome.status === "delivered";
      const changed = await db.exec(
        `UPDATE webhook_outbox SET status = $3, next_attempt_at = $4, last_error = $5, delivered_at = $6,
           lease_owner = NULL, lease_until = NULL, updated_at = $7
         WHERE id = $1 AND lease_owner = $2 AND status = 'pending'`,
        [
          ...[id, owner, outcome.status],
          outcome.status === "pending" ? outcome.nextAttemptAt : now,
          delivered ? null : outcome.error,
          delivered ? now : null,
          now,
        ],
      );
      return changed === 1;
    },

    /** Gives back a lease without counting the attempt (shutdown before the request was sent). */
    async release(id: string, owner: string, now: number): Promise<void> {
      await db.exec(
        `UPDATE webhook_outbox SET lease_owner = NULL, lease_until = NULL, attempts = attempts - 1, updated_at = $3
         WHERE id = $1 AND lease_owner = $2 AND status = 'pending'`,
        [id, owner, now],
      );
    },

    /** Pending rows of endpoints no longer configured: failed, with a reason. */
    async failOrphans(endpointIds: readonly string[], now: number): Promise<number> {
      const placeholders = endpointIds.map((_, i) => `$${i + 3}`).join(", ");
      const notIn = endpointIds.length > 0 ? `AND endpoint_id NOT IN (${placeholders})` : "";
      return db.exec(
        `UPDATE webhook_outbox SET status = 'failed', last_error = $1, updated_at = $2, lease_owner = NULL, lease_until = NULL
         WHERE status = 'pending' ${notIn}`,
        ["endpoint no longer configured", now, ...endpointIds],
      );
    },

    /** Newest first (ids sort by creation time), optionally of one status. */
    async list(status: DeliveryStatus | undefined, after: string | undefined, limit: number): Promise<OutboxRow[]> {
      const where: string[] = [];
      const params: (string | number)[] = [];
      if (status) {
        params.push(status);
        where.push(`status = $${params.length}`);
      }
      if (after !== undefined) {
        params.push(after);
        where.push(`id < $${params.length}`);
      }
      params.push(limit + 1);
      const rows = await db.query(
        `SELECT ${COLUMNS} FROM webhook_outbox ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
         ORDER BY id DESC LIMIT $${params.length}`,
        params,
      );
      return rows.map(toRow);
    },

    async get(id: string): Promise<OutboxRow | undefined> {
      const rows = await db.query(`SELECT ${COLUMNS} FROM webhook_outbox WHERE id = $1`, [id]);
      return rows[0] ? toRow(rows[0]) : undefined;
    },

    /** A failed row back to pending, due now, with a fresh attempt budget. */
    async retry(tx: Db, id: string, now: number): Promise<boolean> {
      const changed = await tx.exec(
        `UPDATE webhook_outbox SET status = 'pending', attempts = 0, next_attempt_at = $2, updated_at = $2,
           lease_owner = NULL, lease_until = NULL
         WHERE id = $1 AND status = 'failed'`,
        [id, now],
      );
      return changed === 1;
    },

    /** A once-only mark (a scheduled event): true for the first caller on any replica. */
    async mark(tx: Db, mark: string, now: number): Promise<boolean> {
      const sql =
        tx.engine === "postgres"
          ? "INSERT INTO event_marks (mark, created_at) VALUES ($1, $2) ON CONFLICT (mark) DO NOTHING"
          : "INSERT OR IGNORE INTO event_marks (mark, created_at) VALUES ($1, $2)";
      return (await tx.exec(sql, [mark, now])) === 1;
    },
  };
}

export type OutboxStore = ReturnType<typeof createOutboxStore>;
