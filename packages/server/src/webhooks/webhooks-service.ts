import type { WebhookEventType } from "./webhook-events.js";

export type { WebhookEventType } from "./webhook-events.js";
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
