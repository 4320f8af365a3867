import { randomBytes } from "node:crypto";
import type { Actor } from "../admin/admin-context.js";
import { changeEvent } from "../admin/audited-change.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import { KeywardError, notFound } from "../errors.js";
import type { Db } from "../store/db.js";
import type { DeliveryStatus, OutboxRow, OutboxStore } from "./outbox-store.js";
import type { WebhookEventType } from "./webhook-events.js";
import { displayUrl, endpointId } from "./webhook-signing.js";

export type { TransactionalEmitter, WebhookEventType } from "./webhook-events.js";
export { isWebhookEventType, WEBHOOK_EVENT_TYPES } from "./webhook-events.js";

/**
 * How a domain announces an event to the configured webhook endpoints. `emit` durably enqueues the
 * event in the outbox (one row per endpoint subscribed to the type) and returns; delivery happens
 * off the request path, on whichever replica claims the row first. `data` carries ids, names and
 * versions only, never a secret value.
 */
export interface WebhookEmitter {
  emit(type: WebhookEventType, data: Record<string, unknown>): Promise<void>;
}

export interface WebhookEndpointSpec {
  url: string;
  secret: string;
  events: readonly string[];
}

/** A time-ordered id: ids of later rows sort after earlier ones (the deliveries list pages by id). */
function orderedId(prefix: string, now: number): string {
  return `${prefix}_${now.toString(36).padStart(9, "0")}${randomBytes(10).toString("hex")}`;
}

/** The public view of a delivery: never the body's secret-bearing parts (there are none) nor the endpoint's secret. */
export interface DeliveryView {
  id: string;
  event_id: string;
  type: string;
  endpoint_url: string;
  status: DeliveryStatus;
  attempts: number;
  last_error: string | null;
  next_attempt_at: string | null;
  created_at: string;
  delivered_at: string | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function deliveryView(r: OutboxRow): DeliveryView {
  return {
    id: r.id,
    event_id: r.event_id,
    type: r.type,
    endpoint_url: r.endpoint_url,
    status: r.status,
    attempts: r.attempts,
    last_error: r.last_error,
    next_attempt_at: r.status === "pending" ? iso(r.next_attempt_at) : null,
    created_at: new Date(r.created_at).toISOString(),
    delivered_at: iso(r.delivered_at),
  };
}

export function createWebhooksService(deps: {
  db: Db;
  store: OutboxStore;
  clock: Clock;
  endpoints: readonly WebhookEndpointSpec[];
  audit: Pick<AuditSink, "recordIn">;
  /** Told after an emit committed, so this replica sends at once instead of at its next poll. */
  onEnqueued?: () => void;
}) {
  const { db, store, clock } = deps;
  const endpoints = deps.endpoints.map((e) => ({ ...e, id: endpointId(e.url), shown: displayUrl(e.url) }));

  async function emitIn(tx: Db, type: WebhookEventType, data: Record<string, unknown>): Promise<void> {
    const targets = endpoints.filter((e) => e.events.includes(type));
    if (targets.length === 0) return;
    const now = clock.now();
    const eventId = orderedId("msg", now);
    // The body is fixed here: every attempt sends these bytes (only webhook-timestamp and the signature change).
    const body = JSON.stringify({ type, timestamp: new Date(now).toISOString(), data });
    for (const e of targets) {
      await store.insert(tx, {
        ...{ id: orderedId("whd", now), event_id: eventId, endpoint_id: e.id, endpoint_url: e.shown, type, body },
        ...{ status: "pending", attempts: 0, next_attempt_at: now, last_error: null, lease_owner: null },
        ...{ lease_until: null, created_at: now, updated_at: now, delivered_at: null },
      });
    }
  }

  return {
    endpointIds: () => endpoints.map((e) => e.id),
    subscribed: (type: WebhookEventType) => endpoints.some((e) => e.events.includes(type)),

    emitIn: async (tx: Db, type: WebhookEventType, data: Record<string, unknown>) => {
      await emitIn(tx, type, data);
      // Committed or not yet (the caller's transaction): the poll finds it either way.
      if (deps.onEnqueued) setImmediate(deps.onEnqueued);
    },

    async emit(type: WebhookEventType, data: Record<string, unknown>): Promise<void> {
      if (!endpoints.some((e) => e.events.includes(type))) return;
      await db.transaction((tx) => emitIn(tx, type, data));
      deps.onEnqueued?.();
    },

    /** Emits `type` once ever for `mark` (across replicas and restarts): the mark and the rows commit together. */
    async emitOnce(mark: string, type: WebhookEventType, data: Record<string, unknown>): Promise<boolean> {
      const first = await db.transaction(async (tx) => {
        if (!(await store.mark(tx, mark, clock.now()))) return false;
        await emitIn(tx, type, data);
        return true;
      });
      if (first) deps.onEnqueued?.();
      return first;
    },

    /** Sets a once-only mark without an event (a threshold passed before it was ever announced). */
    markOnce: (mark: string) => db.transaction((tx) => store.mark(tx, mark, clock.now())),

    list: (status: DeliveryStatus | undefined, after: string | undefined, limit: number) =>
      store.list(status, after, limit),

    /** A failed delivery back to pending, due now; audited as the actor's change. */
    async retry(actor: Actor, id: string): Promise<OutboxRow> {
      const retried = await db.transaction(async (tx) => {
        if (!(await store.retry(tx, id, clock.now()))) return false;
        await deps.audit.recordIn(tx, changeEvent(actor, "webhook.retry", id));
        return true;
      });
      const existing = await store.get(id);
      if (retried && existing) {
        deps.onEnqueued?.();
        return existing;
      }
      if (!existing) throw notFound(`delivery ${id}`);
      throw new KeywardError("conflict", `delivery ${id} is ${existing.status}: only a failed delivery is retried`);
    },
  };
}

export type WebhooksService = ReturnType<typeof createWebhooksService>;
