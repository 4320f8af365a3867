import { createSignInLimiter } from "../admin/sign-in-limiter.js";
import { KeywardError } from "../errors.js";
import { readJson } from "../http/body.js";
import { allowAnyOrigin, registerPreflight } from "../http/cors.js";
import type { RequestContext, Router } from "../http/router.js";
import { json, oauthErrors } from "../openapi/operation.js";
import { sendOAuthJson } from "../tokens/oauth-errors.js";
import { type OAuthClients, RegistrationError, RegistrationRequest, RegistrationResponse } from "./oauth-clients.js";

/** A registration is a few URIs and names: 16 KiB is ample, and bounds what parsing costs. */
const REGISTRATION_BODY_BYTES = 16 * 1024;

/** Refusals of the body itself; anything else (store, audit down) keeps its own answer. */
const BAD_INPUT = new Set(["payload_too_large", "unsupported_media_type", "invalid_request"]);

/** `POST /oauth/register` (RFC 7591), open to anyone, bounded per address and in total. */
export function registerRegistrationRoutes(
  router: Router,
  deps: {
    clients: OAuthClients;
    clientIp: (ctx: RequestContext) => string;
    now: () => number;
    perAddressPerMinute: number;
  },
): void {
  // The fixed-window limiter of the console sign-in (admin/sign-in-limiter.ts): per address, and
  // over all addresses so that many cannot add up to an unbounded rate.
  const limiter = createSignInLimiter({
    perAddressPerMinute: deps.perAddressPerMinute,
    totalPerMinute: Math.max(deps.perAddressPerMinute * 10, 100),
  });
  router.post(
    "/oauth/register",
    {
      operationId: "oauthRegister",
      summary: "RFC 7591 dynamic client registration (MCP clients; redirect URIs: loopback or allowed hosts)",
      tag: "oauth",
      auth: "public",
      body: RegistrationRequest,
      responses: {
        201: json(RegistrationResponse, "Registered; a confidential client's secret is shown this once"),
        ...oauthErrors({
          400: "invalid_redirect_uri or invalid_client_metadata (RFC 7591 §3.2.2)",
          429: "invalid_request: too many registrations from this address",
          503: "temporarily_unavailable: the registration table is full",
        }),
      },
    },
    async (ctx) => {
      // Browser-based MCP clients register from their own page (http/cors.ts).
      allowAnyOrigin(ctx);
      const ip = deps.clientIp(ctx);
      if (!limiter.allow(ip, deps.now())) {
        sendOAuthJson(
          ctx.res,
          429,
          { error: "invalid_request", error_description: "too many registrations; try again in a minute" },
          { "retry-after": "60" },
        );
        return;
      }
      try {
        const body = await readJson(ctx.req, RegistrationRequest, REGISTRATION_BODY_BYTES);
        const answer = await deps.clients.register(body, { ip, requestId: ctx.requestId });
        sendOAuthJson(ctx.res, 201, answer);
      } catch (err) {
        if (err instanceof RegistrationError) {
          sendOAuthJson(ctx.res, err.status, { error: err.error, error_description: err.message });
          return;
        }
        if (err instanceof KeywardError && BAD_INPUT.has(err.code)) {
          const status = err.code === "payload_too_large" ? 413 : 400;
          sendOAuthJson(ctx.res, status, { error: "invalid_client_metadata", error_description: err.message });
          return;
        }
        throw err;
      }
    },
  );
  registerPreflight(router, "/oauth/register", "POST", "content-type, mcp-protocol-version");
}
