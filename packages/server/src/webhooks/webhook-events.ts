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
