import { timingSafeEqual } from "node:crypto";
import { z } from "zod";
import type { AuditSink } from "../audit/audit-sink.js";
import { OAUTH_CLIENT_PREFIX, standInKey } from "../auth/issuer-client.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import { generateSecret, hashSecret, isWellFormed, randomBase62 } from "../crypto/secret-format.js";
import type { KeyEntry } from "../keys/key-entry.js";
import { OAuthError } from "../tokens/oauth-errors.js";
import { GRANT_AUTHORIZATION_CODE } from "../tokens/token-routes.js";
import type { ClientAuthMethod, OAuthClientRow, OAuthClientsStore } from "./oauth-clients-store.js";
import { redirectUriProblem } from "./redirect-policy.js";

/** RFC 7591 §2 client metadata, as far as Keyward uses it; other members are ignored (§3.1). */
export const RegistrationRequest = z.object({
  redirect_uris: z.array(z.string().max(2000)).min(1).max(10),
  token_endpoint_auth_method: z.enum(["none", "client_secret_basic", "client_secret_post"]).default("none"),
  grant_types: z
    .array(z.enum(["authorization_code", "refresh_token"]))
    .min(1)
    .default(["authorization_code", "refresh_token"]),
  response_types: z.array(z.literal("code")).min(1).default(["code"]),
  client_name: z.string().min(1).max(200).optional(),
});

/** The RFC 7591 §3.2.1 answer: the metadata as registered, and the secret once. */
export const RegistrationResponse = z.object({
  client_id: z.string(),
  client_secret: z.string().optional(),
  client_secret_expires_at: z.number().optional(),
  client_id_issued_at: z.number(),
  client_name: z.string().optional(),
  redirect_uris: z.array(z.string()),
  token_endpoint_auth_method: z.string(),
  grant_types: z.array(z.string()),
  response_types: z.array(z.string()),
});

/** A refusal of a registration (RFC 7591 §3.2.2), answered `{error, error_description}`. */
export class RegistrationError extends Error {
  constructor(
    readonly error: "invalid_redirect_uri" | "invalid_client_metadata" | "temporarily_unavailable",
    description: string,
    readonly status = 400,
  ) {
    super(description);
  }
}

export interface OAuthClientsDeps {
  store: OAuthClientsStore;
  integrity: IntegrityKeys;
  audit: AuditSink;
  now: () => number;
  redirectHosts: ReadonlySet<string>;
  maxClients: number;
}

/**
 * Registered OAuth clients (RFC 7591): the registration policy, and a client's authentication at
 * the token endpoint. A public client (`none`, what MCP clients register) proves nothing at the
 * token endpoint but its `client_id`; PKCE is what binds its code to it. A confidential client's
 * secret (`kwc_…`) is shown once and stored as its keyed hash, like API keys.
 */
export function createOAuthClients(deps: OAuthClientsDeps) {
  const { store, now } = deps;

  return {
    async register(body: z.infer<typeof RegistrationRequest>, meta: { ip: string; requestId: string }) {
      for (const uri of body.redirect_uris) {
        const problem = redirectUriProblem(uri, deps.redirectHosts);
        if (problem !== undefined) throw new RegistrationError("invalid_redirect_uri", problem);
      }
      if (!body.grant_types.includes(GRANT_AUTHORIZATION_CODE)) {
        throw new RegistrationError("invalid_client_metadata", "grant_types must include authorization_code");
      }
      const id = `${OAUTH_CLIENT_PREFIX}${randomBase62(22)}`;
      const secret = body.token_endpoint_auth_method === "none" ? undefined : generateSecret("kwc");
      const t = now();
      const row: OAuthClientRow = {
        id,
        secret_hash: secret === undefined ? null : hashSecret(secret, deps.integrity),
        name: body.client_name ?? null,
        redirect_uris: [...new Set(body.redirect_uris)],
        auth_method: body.token_endpoint_auth_method,
        grant_types: [...new Set(body.grant_types)],
        created_at: t,
        last_used_at: t,
      };
      if (!(await store.insertWithin(row, deps.maxClients))) {
        throw new RegistrationError(
          "temporarily_unavailable",
          "the registration table is full (mcp_authorization.max_clients); an admin must remove registrations",
          503,
        );
      }
      await deps.audit.record({
        actor: `client:${id}`,
        action: "oauth.client_register",
        target: id,
        outcome: "success",
        ip: meta.ip,
        requestId: meta.requestId,
        details: {
          client_name: row.name,
          redirect_uris: row.redirect_uris,
          token_endpoint_auth_method: row.auth_method,
        },
      });
      return {
        client_id: id,
        ...(secret !== undefined ? { client_secret: secret, client_secret_expires_at: 0 } : {}),
        client_id_issued_at: Math.floor(t / 1000),
        ...(row.name !== null ? { client_name: row.name } : {}),
        redirect_uris: row.redirect_uris,
        token_endpoint_auth_method: row.auth_method,
        grant_types: row.grant_types,
        response_types: ["code"],
      };
    },

    /** The client a `client_id` names, or undefined (any string: unknown, malformed, removed). */
    async get(id: string): Promise<OAuthClientRow | undefined> {
      if (!id.startsWith(OAUTH_CLIENT_PREFIX) || id.length > 64) return undefined;
      return store.get(id);
    },

    /**
     * The client at the token endpoint: `presented` when it authenticated (Basic or body secret),
     * else the bare `client_id`. A confidential client must authenticate with its registered
     * method's secret; a public one must not present a secret. Throws `invalid_client`.
     */
    async authenticate(
      presented: { id: string; secret: string; basic: boolean } | undefined,
      bareId: string | undefined,
    ): Promise<OAuthClientRow> {
      const id = presented?.id ?? bareId;
      if (id === undefined || id === "") throw new OAuthError("invalid_request", "client_id: required");
      const client = await this.get(id);
      if (!client) throw new OAuthError("invalid_client", "unknown client");
      if (client.auth_method === "none") {
        if (presented !== undefined) throw new OAuthError("invalid_client", "this client is public: it has no secret");
        return client;
      }
      if (presented === undefined) throw new OAuthError("invalid_client", "client authentication is required");
      const method: ClientAuthMethod = presented.basic ? "client_secret_basic" : "client_secret_post";
      if (method !== client.auth_method) {
        throw new OAuthError("invalid_client", `this client authenticates with ${client.auth_method}`);
      }
      const ok =
        isWellFormed(presented.secret, "kwc") &&
        client.secret_hash !== null &&
        timingSafeEqual(Buffer.from(hashSecret(presented.secret, deps.integrity)), Buffer.from(client.secret_hash));
      if (!ok) throw new OAuthError("invalid_client", "client authentication failed");
      return client;
    },

    touch: (id: string) => store.touch(id, now()),
  };
}

export type OAuthClients = ReturnType<typeof createOAuthClients>;

/**
 * The token endpoint meters, audits and re-checks scopes by a key; a registered client's grant
 * rests on none (auth/issuer-client.ts), so it gets a stand-in: the client's id, the signed-in
 * user as owner, and the scopes that user may hold on the resource now.
 */
export function clientStandInKey(clientId: string, user: string, scopes: readonly string[]): KeyEntry {
  return standInKey(clientId, user, scopes, null);
}
