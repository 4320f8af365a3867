import type { Key } from "../types";
import type { Field } from "../ui/FormDialog";
import { eachEntry, inFuture, isIpOrCidr, matches, OWNER, SCOPE, splitList } from "../ui/validate";

/**
 * The fields of a key's policy (name, scopes, rate limit, quota, allowed addresses, expiry), for
 * the New key form and the Edit form alike, and the request bodies built from them (SPEC §3).
 */

const WINDOWS: [string, string][] = [
  ["1", "second"],
  ["60", "minute"],
  ["3600", "hour"],
  ["86400", "day"],
];
const PERIODS: [string, string][] = [
  ["day", "day"],
  ["month", "month"],
  ["total", "in total"],
];

/** datetime-local shows local wall time without a zone; the API speaks RFC 3339. */
export function localInput(iso: string | null): string {
  if (!iso) return "";
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

/** A window the menu does not offer (set through the API) is offered as it is, so editing keeps it. */
function windowOptions(k: Key | undefined): [string, string][] {
  const w = k?.rate_limit?.window_s;
  if (w === undefined || WINDOWS.some(([s]) => Number(s) === w)) return WINDOWS;
  return [...WINDOWS, [String(w), `${w} seconds`]];
}

/** Policy fields, filled from `k` when editing. */
export function policyFields(k?: Key): Field[] {
  const expires = localInput(k?.expires_at ?? null);
  return [
    {
      name: "name",
      label: "Name",
      initial: k?.name ?? "",
      hint: "optional, up to 128 characters",
      check: (v) => (v.length > 128 ? "At most 128 characters." : undefined),
    },
    {
      name: "scopes",
      label: "Scopes",
      initial: k?.scopes.join(", ") ?? "",
      placeholder: "agent:billing-bot, read",
      hint: "comma-separated",
      check: eachEntry((s) => SCOPE.test(s), "a scope (printable, no spaces)"),
    },
    {
      name: "rate",
      label: "Rate limit",
      type: "number",
      min: 1,
      max: 1_000_000_000,
      group: "Limits",
      initial: k?.rate_limit ? String(k.rate_limit.limit) : "",
      hint: "requests; empty: no limit",
    },
    {
      name: "window",
      label: "Rate limit window",
      type: "select",
      group: "Limits",
      options: windowOptions(k),
      initial: String(k?.rate_limit?.window_s ?? 60),
    },
    {
      name: "quota",
      label: "Quota",
      type: "number",
      min: 1,
      max: 1e15,
      group: "Limits",
      initial: k?.quota ? String(k.quota.limit) : "",
      hint: "requests; empty: no quota",
    },
    {
      name: "period",
      label: "Quota period",
      type: "select",
      group: "Limits",
      options: PERIODS,
      initial: k?.quota?.period ?? "month",
    },
    {
      name: "ip_allow",
      label: "Allowed addresses",
      initial: k?.ip_allow?.join(", ") ?? "",
      placeholder: "10.0.0.0/8, 192.0.2.1",
      hint: "comma-separated IPs or CIDRs; empty: any",
      check: eachEntry(isIpOrCidr, "an IP address or CIDR"),
    },
    {
      name: "expires",
      label: "Expires",
      type: "datetime-local",
      initial: expires,
      hint: "empty: never",
      // An expiry already past may stay as it is; a new one must lie ahead.
      check: (v) => (v === expires ? undefined : inFuture(v)),
    },
  ];
}

export const createFields = (): Field[] => [
  {
    name: "owner",
    label: "Owner",
    required: true,
    placeholder: "consumer:acme",
    hint: "consumer:<name>, agent:<name> or user:<id>",
    check: matches(OWNER, "Must be consumer:<name>, agent:<name> or user:<id> (lower-case names)."),
  },
  ...policyFields(),
];

type V = Record<string, string>;
const rateOf = (v: V) => (v.rate ? { limit: Number(v.rate), window_s: Number(v.window) } : null);
const quotaOf = (v: V) => (v.quota ? { limit: Number(v.quota), period: v.period } : null);
const ipsOf = (v: V) => {
  const ips = splitList(v.ip_allow);
  return ips.length > 0 ? ips : null;
};
const expiryOf = (v: V) => (v.expires ? new Date(v.expires).toISOString() : null);

/** POST /admin/v1/keys: only what was filled in. */
export function createBody(v: V): Record<string, unknown> {
  const body: Record<string, unknown> = { owner: v.owner, scopes: splitList(v.scopes) };
  if (v.name) body.name = v.name;
  if (v.rate) body.rate_limit = rateOf(v);
  if (v.quota) body.quota = quotaOf(v);
  const ips = ipsOf(v);
  if (ips) body.ip_allow = ips;
  if (v.expires) body.expires_at = expiryOf(v);
  return body;
}

/**
 * PATCH /admin/v1/keys/:id: only the settings whose fields changed (the API leaves the rest as
 * they are), so an untouched expiry keeps its seconds and an untouched limit its exact window.
 * An emptied field clears its setting (null).
 */
export function patchBody(k: Key, v: V): Record<string, unknown> {
  const was: V = {};
  for (const f of policyFields(k)) was[f.name] = f.initial ?? "";
  const changed = (...names: string[]) => names.some((n) => (v[n] ?? "") !== was[n]);
  const body: Record<string, unknown> = {};
  if (changed("name")) body.name = v.name ? v.name : null;
  if (changed("scopes")) body.scopes = splitList(v.scopes);
  // A window or period alone changes nothing while there is no limit.
  if (changed("rate") || (v.rate && changed("window"))) body.rate_limit = rateOf(v);
  if (changed("quota") || (v.quota && changed("period"))) body.quota = quotaOf(v);
  if (changed("ip_allow")) body.ip_allow = ipsOf(v);
  if (changed("expires")) body.expires_at = expiryOf(v);
  return body;
}
