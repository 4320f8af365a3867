import { z } from "zod";
import { OAUTH_CLIENT_PREFIX } from "../auth/issuer-client.js";
import { presentedCredential } from "../auth/presented-credential.js";
import { KeywardError } from "../errors.js";
import { readJson } from "../http/body.js";
import { allowAnyOrigin, registerPreflight } from "../http/cors.js";
import type { RequestContext, Router } from "../http/router.js";
import type { KeyEntry } from "../keys/key-entry.js";
import { json, oauthErrors } from "../openapi/operation.js";
import { type PresentedClient, presentedClient } from "./client-auth.js";
import { OAuthError, sendOAuthError, sendOAuthJson } from "./oauth-errors.js";
import { OAUTH_BODY_BYTES, parseScope, readOAuthParams, required } from "./oauth-form.js";
import type { TokenExchange } from "./token-exchange.js";
import {
  IntrospectionSchema,
  OAuthIntrospectParams,
  OAuthRevokeParams,
  OAuthTokenParams,
  TokenResponseSchema,
} from "./tokens-schemas.js";
import { ACCESS_TOKEN_TYPE, type RequestMeta, type TokenResponse, type TokensService } from "./tokens-service.js";
import { GRANT_JWT_BEARER, type WorkloadExchange } from "./workload-exchange.js";

/** The OAuth endpoints read form (RFC 6749) or JSON bodies alike (oauth-form.ts). */
const OAUTH_BODY = ["application/x-www-form-urlencoded", "application/json"];

export const GRANT_CLIENT_CREDENTIALS = "client_credentials";
export const GRANT_REFRESH_TOKEN = "refresh_token";
export const GRANT_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
/** RFC 6749 §4.1, for registered clients (oauth/code-grant.ts). */
export const GRANT_AUTHORIZATION_CODE = "authorization_code";

/**
 * Registered OAuth clients (`oac_…`, oauth/) at the token endpoint: their authentication, and the
 * authorization_code grant. Absent: that grant is unsupported and such clients unknown.
 */
export interface RegisteredClientsAtToken {
  /** A registered client: authenticated (confidential) or named (public); throws `OAuthError`. */
  authenticate(presented: PresentedClient | undefined, bareId: string | undefined): Promise<{ id: string }>;
  codeGrant(
    params: Map<string, string>,
    presented: PresentedClient | undefined,
    meta: RequestMeta,
  ): Promise<TokenResponse>;
}

export interface TokenRoutesDeps {
  tokens: TokensService;
  exchange: TokenExchange;
  /** RFC 7523 jwt-bearer with a platform token (`trusted_workloads`); absent: the grant is unsupported. */
  workload?: WorkloadExchange | undefined;
  registered?: RegisteredClientsAtToken | undefined;
  clientIp: (ctx: RequestContext) => string;
}

const dify = z.strictObject({
  api_key: z.string().min(1).max(512),
  duration_secs: z
    .number()
    .int()
    .min(1)
    .max(10 * 365 * 86_400)
    .optional(),
  scope: z.string().max(8192).optional(),
  audience: z.string().min(1).max(63).optional(),
});

/**
 * Runs an OAuth handler, answering RFC 6749 errors in their own body. Infrastructure failures
 * (store or audit down) keep the SPEC §4 body and status.
 */
function oauth(handler: (ctx: RequestContext, basicTried: { value: boolean }) => Promise<void>) {
  return async (ctx: RequestContext) => {
    const basicTried = { value: /^Basic\b/i.test(ctx.req.headers.authorization ?? "") };
    try {
      await handler(ctx, basicTried);
    } catch (err) {
      if (
        err instanceof KeywardError &&
        ["payload_too_large", "unsupported_media_type", "invalid_request"].includes(err.code)
      ) {
        sendOAuthJson(ctx.res, err.code === "payload_too_large" ? 413 : 400, {
          error: "invalid_request",
          error_description: err.message,
        });
        return;
      }
      if (!(err instanceof OAuthError)) throw err;
      sendOAuthError(ctx.res, err, basicTried.value);
    }
  };
}

/** `POST /v1/auth/token`, `/oauth/token`, `/oauth/introspect`, `/oauth/revoke` (SPEC §5). */
export function registerTokenRoutes(router: Router, deps: TokenRoutesDeps): void {
  const meta = (ctx: RequestContext): RequestMeta => ({ ip: deps.clientIp(ctx), requestId: ctx.requestId });

  async function authenticatedClient(ctx: RequestContext, params: Map<string, string>): Promise<KeyEntry | undefined> {
    const client = presentedClient(ctx.req.headers, params);
    return client ? deps.tokens.clientKey(client, deps.clientIp(ctx)) : undefined;
  }

  router.post(
    "/v1/auth/token",
    {
      operationId: "issueTokenForKey",
      summary: "Exchange an API key for an access token and a refresh token",
      tag: "tokens",
      auth: "public",
      body: dify,
      responses: {
        200: json(TokenResponseSchema, "The tokens"),
        ...oauthErrors({ 400: "invalid_request, invalid_grant (the key is not usable) or invalid_scope" }),
      },
    },
    oauth(async (ctx) => {
      const body = await readJson(ctx.req, dify, OAUTH_BODY_BYTES);
      const key = await deps.tokens.grantKey(body.api_key, deps.clientIp(ctx));
      const scopes = parseScope(body.scope);
      const response = await deps.tokens.issueForKey(
        key,
        {
          grant: "api_key",
          ...(body.duration_secs !== undefined ? { lifetimeS: body.duration_secs } : {}),
          ...(scopes ? { scopes } : {}),
          ...(body.audience ? { audience: body.audience } : {}),
        },
        meta(ctx),
        true,
      );
      sendOAuthJson(ctx.res, 200, response);
    }),
  );

  router.post(
    "/oauth/token",
    {
      operationId: "oauthToken",
      summary:
        "RFC 6749 token endpoint: authorization_code (registered MCP clients, PKCE), client_credentials, refresh_token, token exchange (RFC 8693), jwt-bearer (RFC 7523, trusted workloads)",
      tag: "tokens",
      auth: "public",
      body: OAuthTokenParams,
      bodyTypes: OAUTH_BODY,
      responses: {
        200: json(TokenResponseSchema, "The tokens"),
        ...oauthErrors({
          400: "invalid_request, invalid_grant, invalid_scope, invalid_target, unsupported_grant_type",
          401: "invalid_client: client authentication failed",
        }),
      },
    },
    oauth(async (ctx) => {
      // Browser-based MCP clients redeem their code from their own page; the credential is in the
      // request, never a cookie (http/cors.ts).
      allowAnyOrigin(ctx);
      const params = await readOAuthParams(ctx.req);
      const grant = required(params, "grant_type");
      const scopes = parseScope(params.get("scope"));
      if (grant === GRANT_CLIENT_CREDENTIALS) {
        const client = await authenticatedClient(ctx, params);
        if (!client) throw new OAuthError("invalid_client", "client authentication is required");
        const audience = params.get("audience");
        const response = await deps.tokens.issueForKey(
          client,
          { grant, ...(scopes ? { scopes } : {}), ...(audience ? { audience } : {}) },
          meta(ctx),
          false,
        );
        sendOAuthJson(ctx.res, 200, response);
        return;
      }
      if (grant === GRANT_AUTHORIZATION_CODE && deps.registered) {
        const response = await deps.registered.codeGrant(params, presentedClient(ctx.req.headers, params), meta(ctx));
        sendOAuthJson(ctx.res, 200, response);
        return;
      }
      if (grant === GRANT_REFRESH_TOKEN) {
        // Client authentication is optional here (the refresh token is bound to its key), but a
        // `client_id` named without a secret must still be that key's: it is not ignored.
        // A registered client (`oac_…`) authenticates as registered; a public one names itself.
        const presented = presentedClient(ctx.req.headers, params);
        const named = presented?.id ?? params.get("client_id");
        const client =
          named?.startsWith(OAUTH_CLIENT_PREFIX) && deps.registered
            ? (await deps.registered.authenticate(presented, params.get("client_id"))).id
            : ((await authenticatedClient(ctx, params)) ?? params.get("client_id"));
        const resource = params.get("resource");
        const response = await deps.tokens.refresh(
          required(params, "refresh_token"),
          client,
          { ...(scopes ? { scopes } : {}), ...(resource !== undefined ? { resource } : {}) },
          meta(ctx),
        );
        sendOAuthJson(ctx.res, 200, response);
        return;
      }
      if (grant === GRANT_TOKEN_EXCHANGE) {
        const requested = params.get("requested_token_type");
        if (requested !== undefined && requested !== ACCESS_TOKEN_TYPE) {
          throw new OAuthError("invalid_request", `requested_token_type: only ${ACCESS_TOKEN_TYPE} is issued`);
        }
        const client = await authenticatedClient(ctx, params);
        const response = await deps.exchange(
          {
            subjectToken: required(params, "subject_token"),
            subjectTokenType: required(params, "subject_token_type"),
            actorToken: params.get("actor_token"),
            actorTokenType: params.get("actor_token_type"),
            audience: params.get("audience") || undefined,
            scopes,
          },
          client,
          meta(ctx),
        );
        sendOAuthJson(ctx.res, 200, response);
        return;
      }
      if (grant === GRANT_JWT_BEARER && deps.workload) {
        // RFC 7523 §3: client authentication is optional; the assertion alone names the agent.
        // As for refresh_token, credentials that are presented must still authenticate.
        await authenticatedClient(ctx, params);
        const response = await deps.workload(
          { token: required(params, "assertion"), scopes, grant: "jwt-bearer" },
          meta(ctx),
        );
        sendOAuthJson(ctx.res, 200, response);
        return;
      }
      throw new OAuthError("unsupported_grant_type", "grant_type is not supported");
    }),
  );

  registerPreflight(router, "/oauth/token", "POST", "authorization, content-type, mcp-protocol-version");

  router.post(
    "/oauth/introspect",
    {
      operationId: "oauthIntrospect",
      summary: "RFC 7662 introspection, for an agent (its key as Bearer, or Basic with key id and key)",
      tag: "tokens",
      auth: "public",
      body: OAuthIntrospectParams,
      bodyTypes: OAUTH_BODY,
      responses: {
        200: json(IntrospectionSchema, "Whether the token is active for this agent, and its claims"),
        ...oauthErrors({ 400: "invalid_request: no token", 401: "invalid_client: not an agent's key" }),
      },
    },
    oauth(async (ctx, basicTried) => {
      const params = await readOAuthParams(ctx.req);
      let caller = await authenticatedClient(ctx, params);
      if (!caller) {
        const presented = presentedCredential(ctx.req.headers);
        if (presented?.asKey) {
          basicTried.value = false;
          caller = await deps.tokens.bearerKey(presented.value, deps.clientIp(ctx));
        }
      }
      if (!caller) throw new OAuthError("invalid_client", "introspection requires an agent's key");
      if (!caller.owner.startsWith("agent:"))
        throw new OAuthError("invalid_client", "introspection requires an agent's key");
      const result = await deps.tokens.introspect(required(params, "token"), caller);
      sendOAuthJson(ctx.res, 200, result);
    }),
  );

  /**
   * RFC 7009 §2.1: the client authenticates (Basic or body, as at /oauth/token), and may revoke only
   * tokens issued to it: its key's (the token's `client_id`, a refresh token's key) or its owner's
   * (the token's `sub`). Anything else is answered 200 like an unknown token, revealing nothing.
   * A holder without a key (a user token exchanged from a trusted issuer) may revoke an access
   * token by presenting that very token as `Authorization: Bearer`: possession is all it proves,
   * and it only ends the token. A refresh token needs its key's authentication. No credential at
   * all: 401 invalid_client.
   */
  router.post(
    "/oauth/revoke",
    {
      operationId: "oauthRevoke",
      summary: "RFC 7009 revocation; an unknown token is 200 too",
      tag: "tokens",
      auth: "public",
      body: OAuthRevokeParams,
      bodyTypes: OAUTH_BODY,
      responses: {
        200: { description: "Revoked, or nothing to revoke" },
        ...oauthErrors({
          400: "invalid_request or unsupported_token_type",
          401: "invalid_client: no client authentication and not the token's holder",
        }),
      },
    },
    oauth(async (ctx) => {
      const params = await readOAuthParams(ctx.req);
      const client = await authenticatedClient(ctx, params);
      const hint = params.get("token_type_hint");
      if (hint !== undefined && hint !== "access_token" && hint !== "refresh_token") {
        throw new OAuthError("unsupported_token_type", "token_type_hint must be access_token or refresh_token");
      }
      const token = required(params, "token");
      const presented = presentedCredential(ctx.req.headers);
      const holder = presented !== undefined && !presented.asKey && presented.value === token;
      const by = client ?? (holder ? "holder" : undefined);
      if (by === undefined) throw new OAuthError("invalid_client", "client authentication is required");
      await deps.tokens.revoke(token, by, meta(ctx));
      ctx.res.writeHead(200, { "cache-control": "no-store", "content-length": 0 });
      ctx.res.end();
    }),
  );
}
