import { KeywardError } from "../errors.js";
import { checkForwardedPath, PATH_REFUSAL_MESSAGES } from "../http/path-safety.js";

/**
 * Where an egress request may go: the credential's `base_url` and below, nowhere else.
 *
 * The upstream URL is never parsed out of what the agent sent. Its origin comes from `base_url`
 * alone (undici gets it separately from the path), and its path is `base_url`'s path with the
 * agent's path appended. What could make an upstream resolve the path to somewhere above the base
 * is refused before anything is sent, by the same rules as the gateway's (`http/path-safety.ts`:
 * dot segments however encoded, empty segments, backslashes, control characters, malformed
 * UTF-8). Then the joined URL is parsed once more and must still have base_url's origin and lie
 * under its path.
 *
 * `@` is allowed in the path (`/users/@me`, npm's `/@scope/pkg`): after a path's leading single
 * slash it cannot be read as userinfo, and the origin check above holds whatever follows.
 */
export interface EgressBase {
  readonly origin: string;
  /** base_url's path without a trailing slash ("" for the root). */
  readonly prefix: string;
}

export function egressBase(baseUrl: string): EgressBase {
  const url = new URL(baseUrl);
  const prefix = url.pathname.endsWith("/") ? url.pathname.slice(0, -1) : url.pathname;
  return { origin: url.origin, prefix };
}

/** Splits `/egress/{credential}/rest…` into the decoded name and the raw rest (with its leading slash). */
export function splitEgressPath(path: string): { name: string; rest: string } | undefined {
  if (!path.startsWith("/egress/")) return undefined;
  const after = path.slice("/egress/".length);
  const slash = after.indexOf("/");
  const raw = slash === -1 ? after : after.slice(0, slash);
  if (raw === "") return undefined;
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    // Undecodable: no credential has such a name. Answered like any unknown one (no probing).
    name = "\0";
  }
  return { name, rest: slash === -1 ? "" : after.slice(slash) };
}

/** The query is not a path (no segments to climb): visible ASCII except `#` is all it needs. */
const RAW_QUERY = /^[!-"$-~]*$/;

/**
 * The path (with query) to request from the upstream, or a 400 naming why the path was refused.
 * `rest` is the raw path after `/egress/{credential}` ("" or starting with "/"), `search` the raw
 * query including its "?" ("" when none).
 */
export function egressTargetPath(base: EgressBase, rest: string, search: string): string {
  const safe = checkForwardedPath(rest);
  if (!safe.ok) throw refused(PATH_REFUSAL_MESSAGES[safe.reason]);
  if (!RAW_QUERY.test(search.slice(1))) throw refused("the query may hold only visible ASCII characters");
  const path = `${base.prefix}${rest}` || "/";
  // Belt and braces: what a WHATWG parser makes of the joined URL must still be under base_url.
  const parsed = new URL(path + search, base.origin);
  if (parsed.origin !== base.origin || !under(base, parsed.pathname)) {
    throw refused("the path leaves the credential's base URL");
  }
  return path + search;
}

function under(base: EgressBase, pathname: string): boolean {
  return base.prefix === "" || pathname === base.prefix || pathname.startsWith(`${base.prefix}/`);
}

/**
 * The Location to give the agent for an upstream's Location: one under base_url becomes the same
 * place under `/egress/{credential}` (the agent follows it back through egress, where the secret
 * is injected again); anything else (another origin, or outside base_url's path) is dropped, so
 * an upstream cannot bounce the agent's client (and the Keyward key it sends) elsewhere.
 */
export function agentLocation(location: string, requested: URL, base: EgressBase, egressPath: string): string | null {
  let u: URL;
  try {
    u = new URL(location, requested);
  } catch {
    return null;
  }
  if (u.origin !== base.origin || u.username !== "" || u.password !== "" || !under(base, u.pathname)) return null;
  return `${egressPath}${u.pathname.slice(base.prefix.length)}${u.search}${u.hash}`;
}

const refused = (message: string) => new KeywardError("invalid_request", message);
