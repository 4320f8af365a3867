import type { Field } from "./FormDialog";

/**
 * The console's own checks of a form, run before anything is sent: what the browser's constraint
 * validation would say (required, whole numbers in range, http(s) URLs, dates), plus each field's
 * `check` for what only this form knows (an owner's form, an address list). The server still
 * judges everything; these only spare a round trip and say what is wrong next to the field.
 */
export function fieldProblem(f: Field, value: string, all: Record<string, string>): string | undefined {
  if (value === "") return f.required ? "Required." : undefined;
  if (f.type === "number") {
    const n = Number(value);
    if (!Number.isInteger(n)) return "Must be a whole number.";
    if (f.min !== undefined && n < f.min) return `Must be at least ${f.min}.`;
    if (f.max !== undefined && n > f.max) return `Must be at most ${f.max}.`;
  }
  if (f.type === "url" && !isHttpUrl(value)) return "Must be an absolute http:// or https:// URL.";
  if (f.type === "datetime-local" && Number.isNaN(new Date(value).getTime())) return "Must be a date and time.";
  return f.check?.(value, all);
}

export function isHttpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}

/** A comma-separated list, trimmed, empty entries dropped. */
export function splitList(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9a-fA-F:.]+$/;

/** An IPv4 or IPv6 address, optionally with a /prefix in range (the server parses it exactly). */
export function isIpOrCidr(entry: string): boolean {
  const [ip = "", bits, extra] = entry.split("/");
  if (extra !== undefined) return false;
  const v4 = IPV4.test(ip);
  const v6 = !v4 && ip.includes(":") && IPV6.test(ip) && (ip.match(/::/g)?.length ?? 0) <= 1;
  if (!v4 && !v6) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (v4 ? 32 : 128);
}

/** `check` for a comma-separated list: names the first entry that fails. */
export const eachEntry =
  (ok: (entry: string) => boolean, what: string, max = 100) =>
  (value: string): string | undefined => {
    const entries = splitList(value);
    if (entries.length > max) return `At most ${max} entries.`;
    const bad = entries.find((e) => !ok(e));
    return bad === undefined ? undefined : `"${bad}" is not ${what}.`;
  };

/** The name rules are the server's own (`@keyward/sdk/names`): a form and the server never disagree. */
export { CREDENTIAL_NAME, OWNER, SCOPE, SLUG as NAME } from "@keyward/sdk/names";

export const matches =
  (re: RegExp, message: string) =>
  (value: string): string | undefined =>
    re.test(value) ? undefined : message;

/** An expiry must lie ahead: the server would take a past one and the key would be dead at birth. */
export const inFuture = (value: string): string | undefined =>
  new Date(value).getTime() > Date.now() ? undefined : "Must be in the future.";
