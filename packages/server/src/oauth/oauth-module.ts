import type { Actor } from "../admin/admin-context.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import type { RequestContext, Router } from "../http/router.js";
import type { Logger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import type { McpAuthorizationConfig } from "../tokens/mcp-authorization-config.js";
import type { RegisteredClientsAtToken } from "../tokens/token-routes.js";
import type { TokensService } from "../tokens/tokens-service.js";
import type { ExternalSubject } from "../tokens/trusted-issuers.js";
import type { TrustedIssuerConfig } from "../tokens/trusted-issuers-config.js";
import { registerAuthorizationRoutes } from "./authorization-routes.js";
import { createAuthorizationStart } from "./authorization-start.js";
import { createAuthorizationStore } from "./authorization-store.js";
import { createCodeGrant } from "./code-grant.js";
import { createConsentDecision } from "./consent-decision.js";
import { createOAuthClients } from "./oauth-clients.js";
import { registerOAuthClientsAdminRoutes } from "./oauth-clients-admin-routes.js";
import { createOAuthClientsStore } from "./oauth-clients-store.js";
import { createRegisteredRefresh } from "./registered-refresh.js";
import { registerRegistrationRoutes } from "./registration-routes.js";
import { createSignInCallback } from "./sign-in-callback.js";
import { createSignInProvider } from "./sign-in-provider.js";

export interface OAuthClientsPartDeps {
  db: Db;
  clock: Clock;
  audit: AuditSink;
  integrity: IntegrityKeys;
  issuer: () => string;
  config: McpAuthorizationConfig;
  trustedIssuers: readonly TrustedIssuerConfig[];
  serverExists: (name: string) => boolean;
}

/**
 * The authorization server for MCP clients (SPEC §12), in two steps because the tokens module
 * sits between them: `createOAuthClientsPart` (registrations, and what a refresh of a registered
 * client's token rests on, which the tokens module is built with), then `createOAuthModule`
 * (the browser flow and the code grant, which mint through the tokens service).
 */
export function createOAuthClientsPart(deps: OAuthClientsPartDeps) {
  const now = () => deps.clock.now();
  const clientsStore = createOAuthClientsStore(deps.db);
  const clients = createOAuthClients({
    store: clientsStore,
    integrity: deps.integrity,
    audit: deps.audit,
    now,
    redirectHosts: new Set(deps.config.redirect_hosts),
    maxClients: deps.config.max_clients,
  });
  const signInIssuer = deps.config.sign_in?.issuer;
  // The user may be granted at most what the sign-in issuer's trusted_issuers entries grant.
  const signInScopes = () =>
    signInIssuer === undefined
      ? []
      : deps.trustedIssuers.filter((i) => i.issuer === signInIssuer).flatMap((i) => i.scopes);
  const refresh = createRegisteredRefresh({
    clients,
    issuer: deps.issuer,
    serverExists: deps.serverExists,
    signInScopes,
  });
  return { ...deps, now, clients, clientsStore, signInScopes, refresh };
}

export type OAuthClientsPart = ReturnType<typeof createOAuthClientsPart>;

export function createOAuthModule(
  part: OAuthClientsPart,
  deps: {
    logger: Logger;
    tokens: Pick<TokensService, "issueTracked" | "revokeIssued">;
    verifyIdToken: (
      token: string,
      expect: { issuer: string; nonce: string; audience: string },
    ) => Promise<ExternalSubject>;
  },
) {
  const { db, integrity, audit, issuer, now, clients, config } = part;
  const store = createAuthorizationStore(db);
  const signIn = config.sign_in
    ? {
        settings: { issuer: config.sign_in.issuer, clientId: config.sign_in.client_id, scopes: config.sign_in.scopes },
        provider: createSignInProvider({
          issuer: config.sign_in.issuer,
          clientId: config.sign_in.client_id,
          clientSecret: config.sign_in.client_secret,
          now,
        }),
      }
    : undefined;
  const start = createAuthorizationStart({
    ...{ store, clients, integrity, now, issuer, signIn },
    serverExists: part.serverExists,
    maxPending: config.max_pending,
  });
  const callback = createSignInCallback({
    ...{ store, clients, integrity, now, issuer, signIn },
    verifyIdToken: deps.verifyIdToken,
    warn: (reason) => deps.logger.warn({ reason }, "MCP sign-in could not be verified"),
  });
  const decide = createConsentDecision({ store, integrity, audit, now, issuer });
  const codeGrant = createCodeGrant({
    ...{ store, clients, integrity, issuer, now },
    tokens: deps.tokens,
    serverExists: part.serverExists,
    signInScopes: part.signInScopes,
  });
  const atToken: RegisteredClientsAtToken = { authenticate: (p, id) => clients.authenticate(p, id), codeGrant };
  const maintenance = setInterval(() => {
    void store.purge(now()).catch((err: Error) => deps.logger.warn({ err: err.message }, "oauth purge failed"));
  }, 60_000);
  maintenance.unref();

  return {
    clients,
    store,
    atToken,
    register(
      router: Router,
      clientIp: (ctx: RequestContext) => string,
      requireAdmin: (ctx: RequestContext) => Promise<Actor>,
    ): void {
      registerOAuthClientsAdminRoutes(router, { db, store: part.clientsStore, audit, now, requireAdmin });
      registerRegistrationRoutes(router, {
        clients,
        clientIp,
        now,
        perAddressPerMinute: config.registrations_per_minute,
      });
      registerAuthorizationRoutes(router, { issuer, start, callback, decide, clientIp });
    },
    close(): void {
      clearInterval(maintenance);
    },
  };
}

export type OAuthModule = ReturnType<typeof createOAuthModule>;
