import type { Db } from "../store/db.js";

/**
 * The detectors' windows as every replica sees them: each replica adds what it counted, and reads
 * back the sum of all of them, in one statement per row (an upsert that adds), so no count is lost
 * to a race between replicas. Only keys near a threshold are written here (detectors/share.ts):
 * the request path never touches it.
 */
export interface CountDelta {
  rule: string;
  subject: string;
  windowStart: number;
  n: number;
}

export interface MemberAdd {
  rule: string;
  subject: string;
  windowStart: number;
  member: string;
  at: number;
}

export function createSharedWindows(db: Db) {
  return {
    /** Adds each delta and returns the totals, in the order given. */
    async add(deltas: readonly CountDelta[]): Promise<number[]> {
      if (deltas.length === 0) return [];
      return db.transaction(
        async (tx) => {
          const totals: number[] = [];
          for (const d of deltas) {
            const rows = await tx.query<{ n: number | string }>(
              `INSERT INTO anomaly_counts (rule, subject, window_start, n) VALUES ($1, $2, $3, $4)
               ON CONFLICT (rule, subject, window_start) DO UPDATE SET n = anomaly_counts.n + excluded.n
               RETURNING n`,
              [d.rule, d.subject, d.windowStart, d.n],
            );
            totals.push(Number(rows[0]?.n ?? d.n));
          }
          return totals;
        },
        { durable: false },
      );
    },

    /**
     * Adds a member to a set (a network a key was seen from, an agent it was refused on): whether
     * this call added it (exactly one replica does), the set's size, and its earliest member's time.
     */
    async addMember(m: MemberAdd): Promise<{ added: boolean; size: number; firstSeen: number }> {
      return db.transaction(async (tx) => {
        const added =
          (await tx.exec(
            `INSERT INTO anomaly_members (rule, subject, window_start, member, first_seen) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (rule, subject, window_start, member) DO NOTHING`,
            [m.rule, m.subject, m.windowStart, m.member, m.at],
          )) > 0;
        const row = (
          await tx.query<{ size: number | string; first: number | string }>(
            "SELECT COUNT(*) AS size, MIN(first_seen) AS first FROM anomaly_members WHERE rule = $1 AND subject = $2 AND window_start = $3",
            [m.rule, m.subject, m.windowStart],
          )
        )[0];
        return { added, size: Number(row?.size ?? 1), firstSeen: Number(row?.first ?? m.at) };
      });
    },

    /** Drops windows that ended before `before` (sets with window 0 are kept: they are what was learned). */
    async prune(before: number): Promise<void> {
      await db.exec("DELETE FROM anomaly_counts WHERE window_start < $1", [before]);
      await db.exec("DELETE FROM anomaly_members WHERE window_start > 0 AND window_start < $1", [before]);
    },
  };
}

export type SharedWindows = ReturnType<typeof createSharedWindows>;
