import { createHash, createHmac } from "node:crypto";

/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): `v1,` + base64 of
 * HMAC-SHA256 over `${id}.${timestamp}.${body}`, keyed with the base64-decoded part of the
 * `whsec_` secret. `timestamp` is whole seconds since the epoch.
 */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  return `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}

/** The headers of one delivery. */
export function webhookHeaders(secret: string, id: string, timestamp: number, body: string): Record<string, string> {
  return {
    "content-type": "application/json",
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": signWebhook(secret, id, timestamp, body),
  };
}

/**
 * A stable, non-secret id of an endpoint: its URL hashed (outbox rows name the endpoint by it, so
 * rows survive a restart and a reordered list; a removed endpoint's rows are failed).
 */
export function endpointId(url: string): string {
  return `whe_${createHash("sha256").update(url).digest("hex").slice(0, 20)}`;
}

/** What the API shows of an endpoint: scheme, host and path; never user info or query (either may hold a token). */
export function displayUrl(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}
