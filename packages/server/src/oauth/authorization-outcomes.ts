/**
 * What a step of the authorization flow answers, for the routes to send: a page (an error we must
 * not redirect, RFC 6749 §4.1.2.1), a redirect (to the provider, or back to the client with a code
 * or an error), or the consent page.
 */
export type FlowOutcome =
  | { kind: "page"; status: number; title: string; message: string }
  | { kind: "redirect"; location: string }
  | {
      kind: "consent";
      server: string;
      clientName: string | null;
      clientId: string;
      redirectUri: string;
      scopes: readonly string[];
      user: string;
      consent: string;
      csrf: string;
    };

export const errorPage = (status: number, title: string, message: string): FlowOutcome => ({
  kind: "page",
  status,
  title,
  message,
});

/** RFC 6749 §4.1.2.1 error codes the flow redirects with (plus RFC 8707's invalid_target). */
export type AuthorizationErrorCode =
  | "invalid_request"
  | "unauthorized_client"
  | "access_denied"
  | "unsupported_response_type"
  | "invalid_scope"
  | "server_error"
  | "temporarily_unavailable"
  | "invalid_target";

/**
 * Back to the client's registered redirect URI (already checked to be one) with `error`, its
 * description, the client's `state` and our `iss` (RFC 9207), added to the URI's own query.
 */
export function errorRedirect(
  redirectUri: string,
  issuer: string,
  state: string | null | undefined,
  error: AuthorizationErrorCode,
  description: string,
): FlowOutcome {
  return redirectWith(redirectUri, { error, error_description: description, state, iss: issuer });
}

export function redirectWith(redirectUri: string, params: Record<string, string | null | undefined>): FlowOutcome {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) url.searchParams.set(k, v);
  return { kind: "redirect", location: url.toString() };
}
