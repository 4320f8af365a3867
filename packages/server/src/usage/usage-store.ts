import type { Db } from "../store/db.js";

/** Bucket sizes: minutes, hours, days (UTC). */
export type Step = "m" | "h" | "d";
export const STEP_MS: Readonly<Record<Step, number>> = { m: 60_000, h: 3_600_000, d: 86_400_000 };
export const STEPS: readonly Step[] = ["m", "h", "d"];

/** One counter as a flush writes it: `n` requests of one key to one agent with one outcome in one minute. */
export interface CountDelta {
  keyId: string;
  /** `""` when the request named no agent (or not one by a valid name). */
  agent: string;
  owner: string;
  code: string;
  minute: number;
  n: number;
}

export interface AddressDelta {
  keyId: string;
  ip: string;
  firstSeen: number;
  lastSeen: number;
  n: number;
}

export interface AddressRow {
  ip: string;
  first_seen: number;
  last_seen: number;
  n: number;
}

export type GroupBy = "key" | "agent" | "consumer";
const GROUP_COLUMN: Readonly<Record<GroupBy, string>> = { key: "key_id", agent: "agent", consumer: "owner" };

// Rows per INSERT: 7 parameters each stays far below both engines' parameter limits.
const CHUNK = 400;

/** The usage tables' SQL (migration 9). Counts are only ever added to, so replicas never conflict. */
export function createUsageStore(db: Db) {
  return {
    /** Adds minute counts to their minute, hour and day rows, in one transaction. */
    async add(counts: readonly CountDelta[], addresses: readonly AddressDelta[], keepAddresses: number): Promise<void> {
      const rows = new Map<string, [string, Step, number, string, string, string, number]>();
      for (const c of counts) {
        for (const step of STEPS) {
          const bucket = c.minute - (c.minute % STEP_MS[step]);
          const id = `${c.keyId}\0${step}\0${bucket}\0${c.agent}\0${c.code}`;
          const row = rows.get(id);
          if (row) row[6] += c.n;
          else rows.set(id, [c.keyId, step, bucket, c.agent, c.code, c.owner, c.n]);
        }
      }
      const all = [...rows.values()];
      await db.transaction(
        async (tx) => {
          for (let i = 0; i < all.length; i += CHUNK) {
            const chunk = all.slice(i, i + CHUNK);
            await tx.exec(
              `INSERT INTO usage_counts (key_id, step, bucket, agent, code, owner, n) VALUES ${placeholders(chunk.length, 7)} ON CONFLICT (key_id, step, bucket, agent, code) DO UPDATE SET n = usage_counts.n + excluded.n, owner = CASE WHEN usage_counts.owner = '' THEN excluded.owner ELSE usage_counts.owner END`,
              chunk.flat(),
            );
          }
          for (let i = 0; i < addresses.length; i += CHUNK) {
            const chunk = addresses.slice(i, i + CHUNK);
            await tx.exec(
              `INSERT INTO usage_addresses (key_id, ip, first_seen, last_seen, n) VALUES ${placeholders(chunk.length, 5)} ON CONFLICT (key_id, ip) DO UPDATE SET n = usage_addresses.n + excluded.n, first_seen = CASE WHEN excluded.first_seen < usage_addresses.first_seen THEN excluded.first_seen ELSE usage_addresses.first_seen END, last_seen = CASE WHEN excluded.last_seen > usage_addresses.last_seen THEN excluded.last_seen ELSE usage_addresses.last_seen END`,
              chunk.flatMap((a) => [a.keyId, a.ip, a.firstSeen, a.lastSeen, a.n]),
            );
          }
          // Each key keeps its newest addresses only: the table stays bounded by keys × keepAddresses.
          for (const keyId of new Set(addresses.map((a) => a.keyId))) {
            await tx.exec(
              "DELETE FROM usage_addresses WHERE key_id = $1 AND ip NOT IN (SELECT ip FROM usage_addresses WHERE key_id = $2 ORDER BY last_seen DESC, ip LIMIT $3)",
              [keyId, keyId, keepAddresses],
            );
          }
        },
        // A power cut may lose the last flush; a process crash does not (db.ts).
        { durable: false },
      );
    },

    /** One key's counts by bucket and code, buckets in [from, to). */
    async series(keyId: string, step: Step, from: number, to: number) {
      const rows = await db.query<{ bucket: number | string; code: string; n: number | string }>(
        "SELECT bucket, code, SUM(n) AS n FROM usage_counts WHERE key_id = $1 AND step = $2 AND bucket >= $3 AND bucket < $4 GROUP BY bucket, code",
        [keyId, step, from, to],
      );
      return rows.map((r) => ({ bucket: Number(r.bucket), code: r.code, n: Number(r.n) }));
    },

    /** Counts by group and code over the buckets of one step in [from, to). */
    async grouped(by: GroupBy, step: Step, from: number, to: number) {
      const col = GROUP_COLUMN[by];
      // Requests that named no agent (or whose key's owner was not known) have none to rank.
      const named = by === "agent" ? " AND agent <> ''" : by === "consumer" ? " AND owner <> ''" : "";
      const rows = await db.query<{ id: string; code: string; n: number | string }>(
        `SELECT ${col} AS id, code, SUM(n) AS n FROM usage_counts WHERE step = $1 AND bucket >= $2 AND bucket < $3${named} GROUP BY ${col}, code`,
        [step, from, to],
      );
      return rows.map((r) => ({ id: r.id, code: r.code, n: Number(r.n) }));
    },

    async addresses(keyId: string): Promise<AddressRow[]> {
      const rows = await db.query<AddressRow>(
        "SELECT ip, first_seen, last_seen, n FROM usage_addresses WHERE key_id = $1 ORDER BY last_seen DESC, ip",
        [keyId],
      );
      return rows.map((r) => ({
        ...r,
        first_seen: Number(r.first_seen),
        last_seen: Number(r.last_seen),
        n: Number(r.n),
      }));
    },

    /** Drops one step's buckets older than `before`; returns how many rows went. */
    prune(step: Step, before: number): Promise<number> {
      return db.exec("DELETE FROM usage_counts WHERE step = $1 AND bucket < $2", [step, before]);
    },

    /** Claims the announcement of a quota threshold (in the caller's transaction): true for exactly one caller on any replica. */
    async claimThresholdIn(
      tx: Db,
      lineage: string,
      periodStart: number,
      threshold: number,
      now: number,
    ): Promise<boolean> {
      const changed = await tx.exec(
        "INSERT INTO quota_thresholds (lineage, period_start, threshold, announced_at) VALUES ($1, $2, $3, $4) ON CONFLICT (lineage, period_start, threshold) DO NOTHING",
        [lineage, periodStart, threshold, now],
      );
      return changed === 1;
    },

    /** Forgets announcements of periods that ended long ago (a `total` quota's period never ends). */
    pruneThresholds(before: number): Promise<number> {
      return db.exec("DELETE FROM quota_thresholds WHERE period_start > 0 AND period_start < $1", [before]);
    },
  };
}

export type UsageStore = ReturnType<typeof createUsageStore>;

function placeholders(rows: number, width: number): string {
  const out: string[] = [];
  for (let r = 0; r < rows; r++) {
    const cols: string[] = [];
    for (let c = 1; c <= width; c++) cols.push(`$${r * width + c}`);
    out.push(`(${cols.join(", ")})`);
  }
  return out.join(", ");
}
