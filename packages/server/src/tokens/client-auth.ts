import type { IncomingHttpHeaders } from "node:http";
import { OAuthError } from "./oauth-errors.js";

/** Client credentials as presented: a key id and the key itself. */
export interface PresentedClient {
  id: string;
  secret: string;
  /** HTTP Basic was used (a failure then answers with a Basic challenge). */
  basic: boolean;
}

/**
 * Client authentication at `/oauth/*` (RFC 6749 §2.3.1): HTTP Basic with the form-url-encoded
 * key id and key, or `client_id`/`client_secret` in the body. Using both is refused (§2.3).
 * Returns undefined when the client did not authenticate.
 */
export function presentedClient(
  headers: IncomingHttpHeaders,
  params: Map<string, string>,
): PresentedClient | undefined {
  const auth = headers.authorization;
  const basic = auth === undefined ? undefined : /^Basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(auth)?.[1];
  const bodySecret = params.get("client_secret");
  if (basic !== undefined) {
    if (bodySecret !== undefined) throw new OAuthError("invalid_request", "use one client authentication method");
    const decoded = Buffer.from(basic, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon === -1) throw new OAuthError("invalid_client", "malformed Basic credentials");
    const id = formDecode(decoded.slice(0, colon));
    const secret = formDecode(decoded.slice(colon + 1));
    if (id === undefined || secret === undefined) throw new OAuthError("invalid_client", "malformed Basic credentials");
    const bodyId = params.get("client_id");
    if (bodyId !== undefined && bodyId !== id) throw new OAuthError("invalid_request", "client_id does not match");
    return { id, secret, basic: true };
  }
  if (auth !== undefined && auth.trim() !== "" && !/^Bearer[ \t]/i.test(auth)) {
    throw new OAuthError("invalid_client", "unsupported client authentication scheme");
  }
  if (bodySecret === undefined) return undefined;
  const id = params.get("client_id");
  if (id === undefined || id === "") throw new OAuthError("invalid_request", "client_id: required with client_secret");
  return { id, secret: bodySecret, basic: false };
}

function formDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s.replaceAll("+", " "));
  } catch {
    return undefined;
  }
}
