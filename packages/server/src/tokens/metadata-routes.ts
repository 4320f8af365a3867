import { allowAnyOrigin, registerPreflight } from "../http/cors.js";
import { sendJson } from "../http/respond.js";
import type { Router } from "../http/router.js";
import { json } from "../openapi/operation.js";
import {
  GRANT_AUTHORIZATION_CODE,
  GRANT_CLIENT_CREDENTIALS,
  GRANT_REFRESH_TOKEN,
  GRANT_TOKEN_EXCHANGE,
} from "./token-routes.js";
import { AuthorizationServerMetadataSchema, JwksSchema } from "./tokens-schemas.js";
import { GRANT_JWT_BEARER } from "./workload-exchange.js";

/** RFC 8414 authorization server metadata, served at both well-known paths (SPEC §5). */
export function authorizationServerMetadata(issuer: string): Record<string, unknown> {
  const base = issuer.replace(/\/+$/, "");
  const authMethods = ["client_secret_basic", "client_secret_post"];
  return {
    issuer,
    // SPEC §12: the authorization-code flow for MCP clients (oauth/), advertised whether or not
    // sign-in is configured; /oauth/authorize then answers temporarily_unavailable.
    authorization_endpoint: `${base}/oauth/authorize`,
    token_endpoint: `${base}/oauth/token`,
    registration_endpoint: `${base}/oauth/register`,
    jwks_uri: `${base}/.well-known/jwks.json`,
    introspection_endpoint: `${base}/oauth/introspect`,
    revocation_endpoint: `${base}/oauth/revoke`,
    grant_types_supported: [
      GRANT_AUTHORIZATION_CODE,
      GRANT_CLIENT_CREDENTIALS,
      GRANT_REFRESH_TOKEN,
      GRANT_TOKEN_EXCHANGE,
      GRANT_JWT_BEARER,
    ],
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    code_challenge_methods_supported: ["S256"],
    // RFC 9207: the redirect back to the client names us, against mix-up attacks.
    authorization_response_iss_parameter_supported: true,
    token_endpoint_auth_methods_supported: ["none", ...authMethods],
    introspection_endpoint_auth_methods_supported: [...authMethods, "bearer"],
    revocation_endpoint_auth_methods_supported: [...authMethods, "none"],
    access_token_signing_alg_values_supported: ["ES256"],
  };
}

/** The well-known documents of the token issuer: its RFC 8414 metadata and the keys that verify its tokens. */
export function registerMetadataRoutes(router: Router, deps: { issuer: () => string; jwks: () => unknown }): void {
  for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
    router.get(
      path,
      {
        operationId: path.endsWith("openid-configuration")
          ? "getOpenIdConfiguration"
          : "getAuthorizationServerMetadata",
        summary: "RFC 8414 authorization server metadata",
        tag: "tokens",
        auth: "public",
        responses: { 200: json(AuthorizationServerMetadataSchema, "The metadata") },
      },
      (ctx) => {
        // MCP clients in a browser page discover from here (http/cors.ts): a public document.
        allowAnyOrigin(ctx);
        sendJson(ctx.res, 200, authorizationServerMetadata(deps.issuer()), { "cache-control": "public, max-age=300" });
      },
    );
    // The MCP SDK's discovery sends MCP-Protocol-Version, which makes a browser ask first.
    registerPreflight(router, path, "GET", "mcp-protocol-version");
  }
  router.get(
    "/.well-known/jwks.json",
    {
      operationId: "getJwks",
      summary: "The public keys that verify Keyward's tokens (retired ones until their tokens expired)",
      tag: "tokens",
      auth: "public",
      responses: { 200: json(JwksSchema, "The JSON Web Key Set") },
    },
    (ctx) => sendJson(ctx.res, 200, deps.jwks(), { "cache-control": "public, max-age=300" }),
  );
}
