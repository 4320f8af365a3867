import type { Db } from "../store/db.js";

/** The event types of SPEC §10, in the order the spec lists them. */
export const WEBHOOK_EVENT_TYPES = [
  "alert.created",
  "key.frozen",
  "key.revoked",
  "key.rotated",
  "key.expiring",
  "quota.threshold",
  "credential.changed",
  "token_provider.failing",
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export function isWebhookEventType(value: string): value is WebhookEventType {
  return (WEBHOOK_EVENT_TYPES as readonly string[]).includes(value);
}

/**
 * What a domain is handed to announce its changes: `emitIn` enqueues in the caller's transaction,
 * so the change and its event commit together or not at all (webhooks-service.ts builds it).
 */
export interface TransactionalEmitter {
  emit(type: WebhookEventType, data: Record<string, unknown>): Promise<void>;
  emitIn(tx: Db, type: WebhookEventType, data: Record<string, unknown>): Promise<void>;
}
