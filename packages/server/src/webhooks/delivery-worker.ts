import { randomBytes } from "node:crypto";
import type { Clock } from "../clock.js";
import type { Logger } from "../ops/logger.js";
import type { OutboxRow, OutboxStore } from "./outbox-store.js";
import { sendWebhook } from "./webhook-sender.js";
import { webhookHeaders } from "./webhook-signing.js";

export interface DeliverySettings {
  /** How often this replica looks for due rows (an emit on this replica looks at once). */
  pollMs: number;
  /** One POST, connect to last byte. */
  timeoutMs: number;
  /** POSTs in flight per endpoint on this replica: a hanging endpoint holds only its own slots. */
  concurrency: number;
  /** Attempts before a row is marked failed (the admin API can retry it). */
  maxAttempts: number;
  /** Backoff: base × 2^(attempt−1), capped, with jitter in [½, 1] of that. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** At shutdown, how long in-flight POSTs may finish before they are cut and their leases given back. */
  shutdownGraceMs: number;
}

export const DEFAULT_DELIVERY: Readonly<DeliverySettings> = {
  pollMs: 1000,
  timeoutMs: 10_000,
  concurrency: 4,
  maxAttempts: 30,
  baseDelayMs: 5000,
  maxDelayMs: 3_600_000,
  shutdownGraceMs: 5000,
};

export type DeliveryOutcome = "delivered" | "retried" | "failed" | "released";

export interface Endpoint {
  id: string;
  url: string;
  secret: string;
}

const MAX_ERROR_LENGTH = 200;

/** The delay before attempt `attempts + 1`, jittered so a recovering receiver is not hit in step. */
export function backoffMs(
  attempts: number,
  s: Pick<DeliverySettings, "baseDelayMs" | "maxDelayMs">,
  random = Math.random,
): number {
  const full = Math.min(s.maxDelayMs, s.baseDelayMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(full * (0.5 + random() / 2));
}

/**
 * Sends the outbox, on every replica. Each pass claims due rows endpoint by endpoint (a lease by
 * conditional UPDATE: one replica per row at a time), POSTs them off the request path, and settles
 * each: delivered on a 2xx, else retried with backoff, else failed after `maxAttempts`.
 */
export function createDeliveryWorker(deps: {
  store: OutboxStore;
  endpoints: readonly Endpoint[];
  clock: Clock;
  logger: Pick<Logger, "warn">;
  settings: DeliverySettings;
  onOutcome?: (outcome: DeliveryOutcome, row: OutboxRow) => void;
}) {
  const { store, clock, settings } = deps;
  const owner = `wk_${randomBytes(8).toString("hex")}`;
  const inflight = new Map<string, Set<Promise<void>>>();
  const byId = new Map(deps.endpoints.map((e) => [e.id, e]));
  const abort = new AbortController();
  const listeners: Array<(outcome: DeliveryOutcome, row: OutboxRow) => void> = [];
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;
  let again = false;

  async function deliver(endpoint: Endpoint, row: OutboxRow): Promise<void> {
    const timestamp = Math.floor(clock.now() / 1000);
    const headers = webhookHeaders(endpoint.secret, row.event_id, timestamp, row.body);
    const result = await sendWebhook(endpoint.url, headers, row.body, settings.timeoutMs, abort.signal);
    const now = clock.now();
    let outcome: DeliveryOutcome;
    if (!result.ok && abort.signal.aborted) {
      await store.release(row.id, owner, now);
      outcome = "released";
    } else if (result.ok) {
      await store.settle(row.id, owner, now, { status: "delivered" });
      outcome = "delivered";
    } else {
      const error = result.error.slice(0, MAX_ERROR_LENGTH);
      const attempts = row.attempts + 1;
      if (attempts >= settings.maxAttempts) {
        await store.settle(row.id, owner, now, { status: "failed", error });
        outcome = "failed";
      } else {
        await store.settle(row.id, owner, now, {
          status: "pending",
          error,
          nextAttemptAt: now + backoffMs(attempts, settings),
        });
        outcome = "retried";
      }
    }
    deps.onOutcome?.(outcome, row);
    for (const l of listeners) l(outcome, row);
  }

  function track(endpoint: Endpoint, row: OutboxRow): void {
    const set = inflight.get(endpoint.id) ?? new Set();
    inflight.set(endpoint.id, set);
    const p: Promise<void> = deliver(endpoint, row)
      .catch((err: unknown) => {
        // The store failed while settling: the lease expires and the row is sent again.
        deps.logger.warn(
          { delivery: row.id, err: err instanceof Error ? err.message : String(err) },
          "webhook delivery not recorded",
        );
      })
      .finally(() => {
        set.delete(p);
        if (!stopped) schedule(0);
      });
    set.add(p);
  }

  async function pass(): Promise<void> {
    for (const endpoint of byId.values()) {
      if (stopped) return;
      const free = settings.concurrency - (inflight.get(endpoint.id)?.size ?? 0);
      if (free <= 0) continue;
      const now = clock.now();
      for (const row of await store.due(endpoint.id, now, free)) {
        if (stopped) return;
        // The lease outlasts the POST, so no other replica takes the row while it is in flight.
        if (await store.claim(row.id, owner, now, now + settings.timeoutMs + 30_000)) track(endpoint, row);
      }
    }
  }

  /** One claiming pass (passes never overlap; one asked for during a pass runs after it). */
  function tick(): Promise<void> {
    if (ticking) {
      again = true;
      return ticking;
    }
    ticking = (async () => {
      do {
        again = false;
        try {
          await pass();
        } catch (err) {
          deps.logger.warn(
            { err: err instanceof Error ? err.message : String(err) },
            "webhook outbox unreadable; trying again",
          );
        }
      } while (again && !stopped);
    })().finally(() => {
      ticking = undefined;
    });
    return ticking;
  }

  function schedule(ms: number): void {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      void tick().finally(() => schedule(settings.pollMs));
    }, ms);
    timer.unref();
  }

  return {
    owner,
    start(): void {
      if (byId.size > 0) schedule(0);
    },
    /** Look now (this replica just enqueued). */
    nudge(): void {
      if (byId.size > 0) schedule(0);
    },
    tick,
    onOutcome(listener: (outcome: DeliveryOutcome, row: OutboxRow) => void): () => void {
      listeners.push(listener);
      return () => listeners.splice(listeners.indexOf(listener), 1);
    },
    inflight: () => [...inflight.values()].reduce((n, s) => n + s.size, 0),
    /**
     * Stops claiming; in-flight POSTs get `graceMs` to finish, then are cut and their leases given
     * back (the row is sent again later, with the same webhook-id).
     */
    async close(graceMs: number): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      await ticking;
      const all = () => Promise.allSettled([...inflight.values()].flatMap((s) => [...s]));
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([all(), new Promise((r) => (grace = setTimeout(r, graceMs)))]);
      clearTimeout(grace);
      abort.abort();
      await all();
    },
  };
}

export type DeliveryWorker = ReturnType<typeof createDeliveryWorker>;
