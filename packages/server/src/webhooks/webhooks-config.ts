import { createPublicKey } from "node:crypto";
import { z } from "zod";
import { isWebhookEventType, WEBHOOK_EVENT_TYPES } from "./webhook-events.js";

/**
 * The `webhooks:` and `leaks:` sections (SPEC §10, docs/operations.md "Webhooks" and "Leaked-key
 * reports"). Every message names the field and never quotes the value: a URL may carry a token and
 * a secret is a secret.
 */

/** `whsec_` + standard base64 of 24 to 64 random bytes (Standard Webhooks). */
const WHSEC = /^whsec_(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
export const WEBHOOK_SECRET_HINT = "must be whsec_ followed by the base64 of 24 to 64 random bytes";

export function isWebhookSecret(value: string): boolean {
  if (!WHSEC.test(value)) return false;
  const bytes = Buffer.from(value.slice(6), "base64").length;
  return bytes >= 24 && bytes <= 64;
}

export const webhookSecretSchema = z.string().refine(isWebhookSecret, { message: WEBHOOK_SECRET_HINT });

export const webhookUrlSchema = z
  .string()
  .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), { message: "url must be an http(s) URL" });

const eventsHint = `events must list event types among ${WEBHOOK_EVENT_TYPES.join(", ")}`;

export const webhookEndpointSchema = z
  .object({
    url: webhookUrlSchema,
    secret: z.string().refine(isWebhookSecret, { message: `secret ${WEBHOOK_SECRET_HINT}` }),
    /** The types this endpoint receives (absent: all of them). */
    events: z
      .array(z.string().refine(isWebhookEventType, { message: eventsHint }))
      .min(1, { message: eventsHint })
      .default([...WEBHOOK_EVENT_TYPES]),
  })
  .strict();

export const webhooksSchema = z.array(webhookEndpointSchema).max(32, { message: "at most 32 endpoints" }).default([]);
export type WebhookEndpointConfig = z.infer<typeof webhookEndpointSchema>;

/** A PEM that holds an ECDSA P-256 public key (the signature the partner format uses). */
const p256Pem = z.string().refine(
  (pem) => {
    try {
      const key = createPublicKey(pem);
      return key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1";
    } catch {
      return false;
    }
  },
  { message: "pem must be an ECDSA P-256 public key in PEM form" },
);

export const leaksSchema = z
  .object({
    /** The reporters' verification keys (GitHub publishes them with their identifiers). */
    public_keys: z
      .array(z.object({ id: z.string().min(1).max(256), pem: p256Pem }).strict())
      .max(32)
      .default([]),
    /** What a reported live key gets. */
    action: z.enum(["revoke", "freeze"]).default("revoke"),
    /** How long a report's digest is remembered, refusing the same report again (replay). */
    replay_window_s: z.coerce
      .number()
      .int()
      .min(60)
      .max(30 * 86_400)
      .default(86_400),
  })
  .strict();
export type LeaksConfig = z.infer<typeof leaksSchema>;

/** The endpoints to deliver to: the `webhooks:` list and the KEYWARD_ALERT_WEBHOOK shortcut (every type). */
export function webhookEndpoints(cfg: {
  webhooks: readonly WebhookEndpointConfig[];
  alert_webhook?: string | undefined;
  alert_webhook_secret?: string | undefined;
}): WebhookEndpointConfig[] {
  const list = [...cfg.webhooks];
  if (cfg.alert_webhook && cfg.alert_webhook_secret) {
    list.push({ url: cfg.alert_webhook, secret: cfg.alert_webhook_secret, events: [...WEBHOOK_EVENT_TYPES] });
  }
  return list;
}
