import type { Key } from "../src/types";

/** The server's error body (SPEC §3). */
export const error = (status: number, code: string, message: string) =>
  new Response(JSON.stringify({ error: { code, message, request_id: "req_test" } }), {
    status,
    headers: { "content-type": "application/json" },
  });
export const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

export const NOW = "2026-12-01T12:00:00.000Z";

/** A key as the API lists it, active and unlimited unless `over` says otherwise. */
export function aKey(over: Partial<Key> & { id: string }): Key {
  return {
    prefix: "kwk_ab",
    owner: "consumer:acme",
    name: null,
    scopes: [],
    status: "active",
    expires_at: null,
    rate_limit: null,
    quota: null,
    ip_allow: null,
    rotated_to: null,
    last_used_at: null,
    created_at: NOW,
    ...over,
  };
}
