import { z } from "zod";

/**
 * Response schemas of the token API (SPEC §5), and the parameters of the OAuth endpoints as
 * documentation: those endpoints read form or JSON parameters by hand (oauth-form.ts, RFC 6749
 * wants unknown parameters ignored), so these schemas describe them and the conformance test
 * checks the description against real answers.
 */

/** RFC 6749 §5.1 (and RFC 8693 §2.2.1's `issued_token_type`). */
export const TokenResponseSchema = z
  .object({
    access_token: z.string(),
    token_type: z.literal("Bearer"),
    expires_in: z.number().int().min(0),
    scope: z.string(),
    refresh_token: z.string().optional(),
    issued_token_type: z.string().optional(),
  })
  .meta({ id: "TokenResponse" });

/** RFC 7662: inactive is `{active: false}` and nothing else; active carries the token's claims. */
export const IntrospectionSchema = z.union([
  z.object({ active: z.literal(false) }),
  z.looseObject({
    active: z.literal(true),
    token_type: z.enum(["Bearer", "refresh_token"]),
    sub: z.string(),
    scope: z.string(),
    exp: z.number().int(),
    iat: z.number().int(),
    client_id: z.string().optional(),
  }),
]);

const anyToken = z.string().min(1);

/** `POST /oauth/token`: the parameters each grant reads. */
export const OAuthTokenParams = z.union([
  z.object({
    grant_type: z.literal("client_credentials"),
    client_id: z.string().optional().describe("the key id (or use HTTP Basic)"),
    client_secret: z.string().optional().describe("the key (or use HTTP Basic)"),
    scope: z.string().optional(),
    audience: z.string().optional(),
  }),
  z.object({
    grant_type: z.literal("authorization_code"),
    code: z.string(),
    redirect_uri: z.string(),
    code_verifier: z.string().describe("PKCE (RFC 7636), S256"),
    client_id: z.string().optional().describe("a registered client's id (or use HTTP Basic when confidential)"),
    client_secret: z.string().optional(),
    resource: z.string().optional().describe("RFC 8707: must equal the authorization request's"),
  }),
  z.object({
    grant_type: z.literal("refresh_token"),
    refresh_token: anyToken,
    client_id: z.string().optional(),
    client_secret: z.string().optional(),
    scope: z.string().optional(),
    resource: z.string().optional().describe("RFC 8707, for a registered client's token: must equal its resource"),
  }),
  z.object({
    grant_type: z.literal("urn:ietf:params:oauth:grant-type:token-exchange"),
    subject_token: anyToken,
    subject_token_type: z.string(),
    actor_token: z.string().optional(),
    actor_token_type: z.string().optional(),
    audience: z.string().optional(),
    scope: z.string().optional(),
    requested_token_type: z.string().optional(),
  }),
  z.object({
    grant_type: z.literal("urn:ietf:params:oauth:grant-type:jwt-bearer"),
    assertion: anyToken.describe("a platform token matching a trusted_workloads rule (RFC 7523)"),
    scope: z.string().optional(),
  }),
]);

export const OAuthIntrospectParams = z.object({ token: anyToken, token_type_hint: z.string().optional() });
export const OAuthRevokeParams = z.object({
  token: anyToken,
  token_type_hint: z.enum(["access_token", "refresh_token"]).optional(),
  client_id: z.string().optional(),
  client_secret: z.string().optional(),
});

/** RFC 7517: public keys only. */
export const JwksSchema = z.object({
  keys: z.array(z.looseObject({ kty: z.string(), kid: z.string(), alg: z.string(), use: z.string().optional() })),
});

/** RFC 8414 metadata (metadata-routes.ts). */
export const AuthorizationServerMetadataSchema = z.object({
  issuer: z.string(),
  token_endpoint: z.string(),
  jwks_uri: z.string(),
  introspection_endpoint: z.string(),
  revocation_endpoint: z.string(),
  authorization_endpoint: z.string(),
  registration_endpoint: z.string(),
  code_challenge_methods_supported: z.array(z.string()),
  authorization_response_iss_parameter_supported: z.boolean(),
  response_modes_supported: z.array(z.string()),
  grant_types_supported: z.array(z.string()),
  response_types_supported: z.array(z.string()),
  token_endpoint_auth_methods_supported: z.array(z.string()),
  introspection_endpoint_auth_methods_supported: z.array(z.string()),
  revocation_endpoint_auth_methods_supported: z.array(z.string()),
  access_token_signing_alg_values_supported: z.array(z.string()),
});

const SigningKeySchema = z.object({ kid: z.string(), alg: z.string(), active: z.boolean() });
export const SigningKeysSchema = z.object({ active_kid: z.string(), keys: z.array(SigningKeySchema) });
export const SigningKeyRotationSchema = SigningKeysSchema.extend({
  previous_kid: z.string(),
  previous_removed_after_s: z.number().int(),
});
export type SigningKeysView = z.infer<typeof SigningKeysSchema>;
