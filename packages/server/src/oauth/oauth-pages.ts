import type { ServerResponse } from "node:http";

/** The HTML pages of the authorization flow: an error page, and the consent page. */

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Text for HTML content and quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
}

/**
 * No script, no style, no image: `default-src 'none'`. The consent form posts to us and we answer
 * with a redirect to the client's registered URI; browsers apply `form-action` to that redirect
 * too, so the consent page allows exactly that URI's origin besides our own.
 */
function headers(formTarget: string | undefined, length: number): Record<string, string | number> {
  const formAction = formTarget === undefined ? "'none'" : `'self' ${formTarget}`;
  return {
    "content-type": "text/html; charset=utf-8",
    "content-length": length,
    "cache-control": "no-store",
    pragma: "no-cache",
    "content-security-policy": `default-src 'none'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    // Not no-referrer: under it a browser sends `Origin: null` with the consent form's POST, and
    // the consent is refused unless it says it comes from our origin. same-origin sends nothing
    // to other origins (the client's redirect URI).
    "referrer-policy": "same-origin",
  };
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${escapeHtml(title)}</title></head>
<body>
${body}
</body></html>
`;
}

/**
 * An authorization error we must not redirect (RFC 6749 §4.1.2.1: unknown client, a redirect URI
 * that is not registered, a sign-in we cannot tie to a request): shown to the user, never sent on.
 */
export function sendErrorPage(res: ServerResponse, status: number, title: string, message: string): void {
  const html = page(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(message)}</p>`);
  res.writeHead(status, headers(undefined, Buffer.byteLength(html)));
  res.end(html);
}

export interface ConsentView {
  server: string;
  clientName: string | null;
  clientId: string;
  redirectHost: string;
  scopes: readonly string[];
  user: string;
  /** The opaque id of the request awaiting this answer, and its CSRF token. */
  consent: string;
  csrf: string;
  /** The origin of the client's redirect URI (the form's answer redirects there). */
  redirectOrigin: string;
  /** Where the form posts: `<issuer>/oauth/authorize/consent`. */
  action: string;
}

/** The consent page: who asks, for which server and scopes, as whom; Approve or Deny. */
export function sendConsentPage(res: ServerResponse, v: ConsentView, setCookie?: string): void {
  const name = v.clientName === null ? "An unnamed application" : `“${v.clientName}”`;
  const scopes = v.scopes.map((s) => `<li><code>${escapeHtml(s)}</code></li>`).join("\n");
  const html = page(
    "Allow access?",
    `<h1>Allow access to MCP server <code>${escapeHtml(v.server)}</code>?</h1>
<p>${escapeHtml(name)} (client <code>${escapeHtml(v.clientId)}</code>, returning to <code>${escapeHtml(v.redirectHost)}</code>) asks to act as <strong>${escapeHtml(v.user)}</strong> with:</p>
<ul>
${scopes}
</ul>
<form method="post" action="${escapeHtml(v.action)}">
<input type="hidden" name="consent" value="${escapeHtml(v.consent)}">
<input type="hidden" name="csrf" value="${escapeHtml(v.csrf)}">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`,
  );
  const h = headers(v.redirectOrigin, Buffer.byteLength(html));
  res.writeHead(200, setCookie === undefined ? h : { ...h, "set-cookie": setCookie });
  res.end(html);
}
