import type { IncomingHttpHeaders } from "node:http";

/**
 * Whether a browser says this request was made by a page of `origin` (CSRF defence for changes
 * made with a cookie: the console's session, the OAuth consent). `Origin` must equal it when sent
 * (`null`, from a sandboxed or privacy-stripped context, is refused), and `Sec-Fetch-Site` must be
 * `same-origin` when sent. A request carrying neither is not a browser's cross-site request: the
 * caller's CSRF token decides alone.
 */
export function fromOwnOrigin(headers: IncomingHttpHeaders, origin: string): boolean {
  const given = headers.origin;
  if (given !== undefined && given !== origin) return false;
  const site = headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin") return false;
  return true;
}

/** The value of the cookie `name` in a `Cookie` header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
