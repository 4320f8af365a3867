import type { Clock } from "../clock.js";
import type { Logger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import type { WebhookEventType } from "../webhooks/webhook-events.js";

const DAY_MS = 86_400_000;
/** Announced before expiry (SPEC §10), nearest last. */
const THRESHOLDS_DAYS = [7, 1] as const;
/** Keys looked at per scan, soonest to expire first (the next scan takes the rest). */
const BATCH = 1000;

/** Once-only emission (webhooks-service.ts `emitOnce`): the mark and the event commit together. */
export interface OnceEmitter {
  emitOnce(mark: string, type: WebhookEventType, data: Record<string, unknown>): Promise<boolean>;
  markOnce(mark: string): Promise<boolean>;
}

interface ExpiringRow {
  id: string;
  owner: string;
  prefix: string;
  name: string | null;
  expires_at: number;
}

/**
 * `key.expiring`, 7 days and 1 day before a key expires: a periodic scan on every replica; a mark
 * per (key, threshold) makes each announcement happen once, whichever replica sees it first. A key
 * found already inside the 1-day threshold gets the 1-day event only (its 7-day mark is set
 * silently). Keys replaced by rotation are left out: their short expiry is the grace period.
 */
export function createKeyExpiryScan(deps: {
  db: Db;
  clock: Clock;
  events: OnceEmitter;
  logger: Pick<Logger, "warn">;
  intervalMs?: number;
}) {
  const { db, clock, events } = deps;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let closed = false;

  async function scan(): Promise<number> {
    const now = clock.now();
    const rows = await db.query<ExpiringRow>(
      `SELECT id, owner, prefix, name, expires_at FROM api_keys
       WHERE status = 'active' AND rotated_to IS NULL AND expires_at > $1 AND expires_at <= $2
       ORDER BY expires_at LIMIT $3`,
      [now, now + (THRESHOLDS_DAYS[0] as number) * DAY_MS, BATCH],
    );
    let announced = 0;
    for (const row of rows) {
      const left = Number(row.expires_at) - now;
      const due = THRESHOLDS_DAYS.filter((d) => left <= d * DAY_MS);
      const nearest = due[due.length - 1];
      if (nearest === undefined) continue;
      for (const d of due) if (d !== nearest) await events.markOnce(`key.expiring:${row.id}:${d}d`);
      const first = await events.emitOnce(`key.expiring:${row.id}:${nearest}d`, "key.expiring", {
        ...{ key_id: row.id, owner: row.owner, prefix: row.prefix, name: row.name },
        expires_at: new Date(Number(row.expires_at)).toISOString(),
        days_before: nearest,
      });
      if (first) announced++;
    }
    return announced;
  }

  /** One scan (scans never overlap); resolves with how many events it enqueued. */
  function runOnce(): Promise<number> {
    running ??= scan().finally(() => {
      running = undefined;
    });
    return running;
  }

  return {
    runOnce,
    start(): void {
      const tick = () => {
        runOnce()
          .catch((err: Error) => deps.logger.warn({ err: err.message }, "key expiry scan failed; trying again later"))
          .finally(() => {
            if (closed) return;
            timer = setTimeout(tick, deps.intervalMs ?? 600_000);
            timer.unref();
          });
      };
      tick();
    },
    async close(): Promise<void> {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      await running?.catch(() => {});
    },
  };
}
