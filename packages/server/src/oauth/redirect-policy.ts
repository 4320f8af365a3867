import { isLoopbackHost } from "../tokens/trusted-issuers-config.js";

/** Longest redirect URI accepted at registration. */
export const MAX_REDIRECT_URI_CHARS = 2000;

/**
 * Which redirect URIs a client may register (RFC 7591 §2 with RFC 8252 §7.3 and RFC 9700 §4.1):
 * http or https on a loopback host, any port (a native client listens on an ephemeral one), or
 * https on one of the configured `redirect_hosts`. Never a fragment, user info, another scheme
 * (`javascript:`, `data:`, custom schemes) or plain http elsewhere. Returns the refusal, or
 * undefined when the URI may be registered. At /oauth/authorize a redirect URI must then equal a
 * registered one exactly (no pattern, no port leeway).
 */
export function redirectUriProblem(uri: string, redirectHosts: ReadonlySet<string>): string | undefined {
  if (uri.length > MAX_REDIRECT_URI_CHARS) return `a redirect URI is longer than ${MAX_REDIRECT_URI_CHARS} characters`;
  // Control characters and spaces never belong in a URI; URL() would silently strip some of them.
  if (/[\s\p{Cc}]/u.test(uri)) return "a redirect URI contains whitespace or control characters";
  if (!URL.canParse(uri)) return "a redirect URI is not an absolute URL";
  const url = new URL(uri);
  if (url.protocol !== "http:" && url.protocol !== "https:") return "a redirect URI must be http(s)";
  if (uri.includes("#")) return "a redirect URI must not have a fragment";
  if (url.username !== "" || url.password !== "") return "a redirect URI must not carry user info";
  if (isLoopbackHost(url.hostname)) return undefined;
  if (url.protocol !== "https:") return "plain http is allowed only on loopback (127.0.0.1, [::1], localhost)";
  if (!redirectHosts.has(url.hostname)) return `the host ${url.hostname} is not an allowed redirect host`;
  return undefined;
}

/**
 * Whether `given` (at /oauth/authorize) names one of the client's registered redirect URIs: the
 * same string, or (RFC 8252 §7.3) the same loopback IP literal URI — `http`, `127.0.0.1` or
 * `[::1]`, same path and query — with another port, since a native client listens on whatever
 * port it got. Nothing else varies: not the host, the scheme, the path, a `localhost` port or an
 * https host's port.
 */
export function redirectUriRegistered(registered: readonly string[], given: string): boolean {
  if (registered.includes(given)) return true;
  const loopbackIp = (u: URL) => u.protocol === "http:" && (u.hostname === "127.0.0.1" || u.hostname === "[::1]");
  if (/[\s\p{Cc}#@]/u.test(given) || !URL.canParse(given)) return false;
  const g = new URL(given);
  if (!loopbackIp(g)) return false;
  return registered.some((r) => {
    const u = new URL(r);
    return loopbackIp(u) && u.hostname === g.hostname && u.pathname === g.pathname && u.search === g.search;
  });
}
