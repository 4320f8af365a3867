import { z } from "zod";
import { randomBase62 } from "../crypto/secret-format.js";
import { KeywardError } from "../errors.js";
import { readBody } from "../http/body.js";
import type { RequestContext, Router } from "../http/router.js";
import { cookieValue, fromOwnOrigin } from "../http/same-origin.js";
import type { FlowOutcome } from "./authorization-outcomes.js";
import { sendConsentPage, sendErrorPage } from "./oauth-pages.js";

/** The browser's flow cookie: set at /oauth/authorize, needed at the callback and the consent. */
export const FLOW_COOKIE = "keyward_oauth";
const OPAQUE = /^[0-9A-Za-z]{43}$/;
const CONSENT_BODY_BYTES = 8 * 1024;

const html = (description: string) => ({ description, contentType: "text/html" });
const redirect = (description: string) => ({ description });

export const AuthorizeQuery = z.object({
  client_id: z.string(),
  redirect_uri: z.string().optional(),
  response_type: z.literal("code"),
  code_challenge: z.string().describe("PKCE (RFC 7636), 43 base64url characters"),
  code_challenge_method: z.literal("S256"),
  resource: z.string().describe("RFC 8707: the MCP server's URL, <issuer>/mcp/{server}"),
  scope: z.string().optional().describe("mcp:<server> or mcp:<server>:<tool>; default: all the user may have there"),
  state: z.string().optional(),
});
const CallbackQuery = z.object({
  state: z.string(),
  code: z.string().optional(),
  error: z.string().optional(),
});
const ConsentForm = z.object({
  consent: z.string(),
  csrf: z.string(),
  decision: z.enum(["approve", "deny"]),
});

export interface AuthorizationRoutesDeps {
  issuer: () => string;
  start: (query: URLSearchParams, browser: string) => Promise<FlowOutcome>;
  callback: (query: URLSearchParams, browser: string | undefined) => Promise<FlowOutcome>;
  decide: (
    form: URLSearchParams,
    browser: string | undefined,
    meta: { ip: string; requestId: string },
  ) => Promise<FlowOutcome>;
  clientIp: (ctx: RequestContext) => string;
}

/**
 * The browser side of the authorization-code flow (SPEC §12): `/oauth/authorize`, the provider's
 * `/oauth/callback`, and the consent answer. The flow cookie is `SameSite=Lax`: the callback
 * arrives as a top-level navigation redirected from the identity provider, a cross-site request
 * on which a Strict cookie would not be sent; Lax is sent there and on the same-origin consent
 * POST, and never on a cross-site POST, which the consent also refuses by Origin.
 */
export function registerAuthorizationRoutes(router: Router, deps: AuthorizationRoutesDeps): void {
  const browserOf = (ctx: RequestContext) => {
    const v = cookieValue(ctx.req.headers.cookie, FLOW_COOKIE);
    return v !== undefined && OPAQUE.test(v) ? v : undefined;
  };
  const flowCookie = (value: string) => {
    const secure = deps.issuer().startsWith("https:") ? "; Secure" : "";
    return `${FLOW_COOKIE}=${value}; Path=/oauth; HttpOnly; SameSite=Lax; Max-Age=900${secure}`;
  };
  const answer = (ctx: RequestContext, outcome: FlowOutcome, setCookie?: string) => {
    if (outcome.kind === "page") {
      sendErrorPage(ctx.res, outcome.status, outcome.title, outcome.message);
    } else if (outcome.kind === "redirect") {
      ctx.res.writeHead(302, {
        location: outcome.location,
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
        "content-length": 0,
        ...(setCookie !== undefined ? { "set-cookie": setCookie } : {}),
      });
      ctx.res.end();
    } else {
      const base = deps.issuer().replace(/\/+$/, "");
      const target = new URL(outcome.redirectUri);
      sendConsentPage(ctx.res, {
        ...outcome,
        redirectHost: target.host,
        redirectOrigin: target.origin,
        action: `${base}/oauth/authorize/consent`,
      });
    }
  };

  router.get(
    "/oauth/authorize",
    {
      operationId: "oauthAuthorize",
      summary:
        "RFC 6749 authorization endpoint (code + PKCE S256 + RFC 8707 resource) for registered MCP clients: sends the user to sign in",
      tag: "oauth",
      auth: "public",
      query: AuthorizeQuery,
      responses: {
        302: redirect(
          "To the identity provider's sign-in, or back to the client's redirect URI with error= (RFC 6749 §4.1.2.1)",
        ),
        400: html("An error page: unknown client, or a redirect_uri that is not registered (never redirected)"),
      },
    },
    async (ctx) => {
      const existing = browserOf(ctx);
      const browser = existing ?? randomBase62(43);
      const outcome = await deps.start(ctx.query, browser);
      answer(ctx, outcome, outcome.kind === "redirect" && existing === undefined ? flowCookie(browser) : undefined);
    },
  );

  router.get(
    "/oauth/callback",
    {
      operationId: "oauthSignInCallback",
      summary: "Where the identity provider returns the user: verifies the sign-in and shows the consent page",
      tag: "oauth",
      auth: "public",
      query: CallbackQuery,
      responses: {
        200: html("The consent page: the MCP server, the client, the scopes; Approve or Deny"),
        302: redirect("Back to the client's redirect URI with error= (access_denied, invalid_scope, server_error)"),
        400: html("An error page: an unknown, used or expired sign-in, or another browser's"),
      },
    },
    async (ctx) => answer(ctx, await deps.callback(ctx.query, browserOf(ctx))),
  );

  router.post(
    "/oauth/authorize/consent",
    {
      operationId: "oauthConsent",
      summary: "The consent page's answer (form, CSRF token, same origin): a code or access_denied to the client",
      tag: "oauth",
      auth: "public",
      body: ConsentForm,
      bodyTypes: ["application/x-www-form-urlencoded"],
      responses: {
        302: redirect("Back to the client's redirect URI with code, state and iss, or error=access_denied"),
        400: html("An error page: already answered, expired, or not a form"),
        403: html("An error page: the answer did not come from our consent page (origin or CSRF token)"),
      },
    },
    async (ctx) => {
      const origin = new URL(deps.issuer()).origin;
      if (!fromOwnOrigin(ctx.req.headers, origin)) {
        sendErrorPage(ctx.res, 403, "Request refused", "This answer did not come from the consent page we showed you.");
        return;
      }
      const type = (ctx.req.headers["content-type"] ?? "").toLowerCase();
      let text: string;
      try {
        text = (await readBody(ctx.req, CONSENT_BODY_BYTES)).toString("utf8");
      } catch (err) {
        if (!(err instanceof KeywardError)) throw err;
        sendErrorPage(ctx.res, 400, "Invalid answer", "The answer is too large.");
        return;
      }
      if (!type.startsWith("application/x-www-form-urlencoded")) {
        sendErrorPage(ctx.res, 400, "Invalid answer", "The answer must be the consent page's form.");
        return;
      }
      const outcome = await deps.decide(new URLSearchParams(text), browserOf(ctx), {
        ip: deps.clientIp(ctx),
        requestId: ctx.requestId,
      });
      answer(ctx, outcome);
    },
  );
}
