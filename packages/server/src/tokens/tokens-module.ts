import type { BlockList } from "node:net";
import type { Actor } from "../admin/admin-context.js";
import { withOutcomes } from "../anomaly/outcome-auth.js";
import type { OutcomeTap } from "../anomaly/outcomes.js";
import type { AuditSink } from "../audit/audit-sink.js";
import { createCallerAuth } from "../auth/caller-auth.js";
import type { Clock } from "../clock.js";
import type { ChangeFeed } from "../cluster/change-feed.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import type { SigningKeys } from "../crypto/signing-keys.js";
import type { RequestContext, Router } from "../http/router.js";
import type { KeysService } from "../keys/keys-service.js";
import type { KeyRateLimit } from "../limits/limits.js";
import type { Logger } from "../ops/logger.js";
import type { Metrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import { createAccessTokens } from "./access-tokens.js";
import { createExternalExchange } from "./external-exchange.js";
import { createJwksPool } from "./external-verifier.js";
import { registerMetadataRoutes } from "./metadata-routes.js";
import { createRefreshTokensStore } from "./refresh-tokens-store.js";
import { registerSigningKeyRoutes } from "./signing-key-routes.js";
import { createTokenExchange } from "./token-exchange.js";
import { createTokenRevocations } from "./token-revocations.js";
import { type RegisteredClientsAtToken, registerTokenRoutes } from "./token-routes.js";
import { createTokensService, type RefreshReuse, type RegisteredClientRefresh } from "./tokens-service.js";
import { createTrustedIssuers } from "./trusted-issuers.js";
import type { TrustedIssuerConfig } from "./trusted-issuers-config.js";
import { createTrustedWorkloads } from "./trusted-workloads.js";
import type { TrustedWorkloadConfig } from "./trusted-workloads-config.js";
import { createWorkloadExchange } from "./workload-exchange.js";

export interface TokensModuleDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  audit: AuditSink;
  changes: ChangeFeed;
  signingKeys: SigningKeys;
  keys: KeysService;
  /** The integrity root's subkeys: refresh tokens are stored keyed. */
  integrity: IntegrityKeys;
  agentExists: (name: string) => Promise<boolean>;
  mayCall: (from: string, to: string) => Promise<boolean>;
  issuer: () => string;
  trustedProxies: BlockList | null;
  /** External identity providers whose JWTs are exchanged for user tokens (SPEC §8). */
  trustedIssuers?: readonly TrustedIssuerConfig[];
  /** Platform identities exchanged for their agent's token (`trusted_workloads`, RFC 7523 / 8693). */
  trustedWorkloads?: readonly TrustedWorkloadConfig[];
  /** A key's rate limit as the gateway counts it: minting tokens counts against it too. */
  rateLimit?: KeyRateLimit;
  /** Where the token endpoints report the keys presented to them (usage, anomaly detectors). */
  outcomes?: OutcomeTap;
  /** Registered OAuth clients (oauth/): what a refresh of their tokens rests on. */
  registeredClients?: RegisteredClientRefresh;
  settings: {
    maxLifetimeS: number;
    refreshLifetimeS: number;
    maxActDepth: number;
    /** The longest any token lives (access or upstream): how long a retired signing key stays. */
    longestTokenS: number;
  };
}

/**
 * Access tokens, refresh tokens, token exchange and signing-key rotation, wired from their parts
 * (SPEC §5). Registers its own handlers on the change feed, and a once-a-minute maintenance timer
 * that purges expired state and reloads the signing keys (a retired key leaves JWKS that way).
 */
export async function createTokensModule(deps: TokensModuleDeps) {
  const { db, clock, logger, metrics, audit, changes, signingKeys, keys } = deps;
  const now = () => clock.now();
  const reloadSigningKeys = () =>
    void signingKeys.reload().catch((err: Error) => logger.warn({ err: err.message }, "signing key reload failed"));

  const revocations = createTokenRevocations({ db, now });
  await revocations.load();
  const revokedListeners: Array<(jti: string) => void> = [];
  const reuseListeners: Array<(reuse: RefreshReuse) => void> = [];
  // Listeners hear of a revocation once this replica refuses the token: a stream ended for it
  // must not be reopened with it in between.
  changes.on(
    "token_revocation",
    (jti) =>
      void revocations
        .reload(jti)
        .then(() => {
          for (const l of revokedListeners) l(jti);
        })
        .catch(() => {}),
  );
  changes.onReset(() => void revocations.load().catch(() => {}));

  let lastKidReload = 0;
  const access = createAccessTokens({
    signer: signingKeys,
    issuer: deps.issuer,
    now,
    isRevoked: revocations.has,
    onUnknownKid: () => {
      // At most one reload per 5 s: garbage kids must not turn into store reads.
      if (now() - lastKidReload < 5000) return;
      lastKidReload = now();
      reloadSigningKeys();
    },
  });
  const callerAuth = createCallerAuth({
    cachedKey: keys.cached,
    loadKey: keys.load,
    cachedKeyById: keys.cachedById,
    loadKeyById: keys.loadById,
    checkToken: access.check,
    trustedProxies: deps.trustedProxies,
    issuer: deps.issuer,
    now,
  });
  const endpointAuth = deps.outcomes ? withOutcomes(callerAuth, deps.outcomes, { now }, "token") : callerAuth;
  const tokens = createTokensService({
    db,
    now,
    audit,
    access,
    refresh: createRefreshTokensStore(db),
    integrity: deps.integrity,
    revocations,
    auth: endpointAuth,
    agentExists: deps.agentExists,
    changes,
    issuer: deps.issuer,
    config: deps.settings,
    onIssue: (kind) => metrics.tokensIssued.inc({ kind }),
    ...(deps.rateLimit ? { rateLimit: deps.rateLimit } : {}),
    ...(deps.registeredClients ? { registeredClients: deps.registeredClients } : {}),
    onRefreshReuse: (reuse) => {
      for (const l of reuseListeners) l(reuse);
    },
  });
  // One key-set cache per JWKS URI for both lists (external-verifier.ts).
  const jwks = createJwksPool({ now });
  const trustedIssuers = createTrustedIssuers({
    issuers: deps.trustedIssuers ?? [],
    now,
    jwks,
    warn: (m) => logger.warn(m),
  });
  const workloads = createTrustedWorkloads({ workloads: deps.trustedWorkloads ?? [], now, jwks });
  const workload = createWorkloadExchange({
    now,
    audit,
    access,
    workloads,
    agentExists: deps.agentExists,
    issuer: deps.issuer,
    maxLifetimeS: deps.settings.maxLifetimeS,
    onIssue: () => metrics.tokensIssued.inc({ kind: "exchange" }),
  });
  const exchange = createTokenExchange({
    now,
    audit,
    access,
    auth: endpointAuth,
    agentExists: deps.agentExists,
    mayCall: deps.mayCall,
    maxLifetimeS: deps.settings.maxLifetimeS,
    maxActDepth: deps.settings.maxActDepth,
    issuer: deps.issuer,
    external: createExternalExchange({
      now,
      audit,
      access,
      issuers: trustedIssuers,
      agentExists: deps.agentExists,
      issuer: deps.issuer,
      maxLifetimeS: deps.settings.maxLifetimeS,
      onIssue: () => metrics.tokensIssued.inc({ kind: "exchange" }),
    }),
    workload: { names: workloads.names, exchange: workload },
    onIssue: () => metrics.tokensIssued.inc({ kind: "exchange" }),
  });
  const maintenance = setInterval(() => {
    void tokens.purge().catch((err: Error) => logger.warn({ err: err.message }, "token purge failed"));
    reloadSigningKeys();
  }, 60_000);
  maintenance.unref();

  const clientIp = (ctx: RequestContext) => callerAuth.requestIp({ headers: ctx.req.headers, peerIp: ctx.peerIp });

  return {
    access,
    callerAuth,
    reloadSigningKeys,
    /** The tokens service: oauth/ mints and revokes a registered client's grants through it. */
    service: tokens,
    /** The one verification of trusted issuers' JWTs: oauth/ verifies sign-in ID tokens with it. */
    trustedIssuers,
    clientIp,
    /** Hears each access token revoked on any replica, once this replica refuses it. */
    onTokenRevoked(listener: (jti: string) => void): void {
      revokedListeners.push(listener);
    },
    /** Hears each refresh token presented a second time on this replica (anomaly/ alerts on it). */
    onRefreshReuse(listener: (reuse: RefreshReuse) => void): void {
      reuseListeners.push(listener);
    },

    /** `registered`: the authorization_code grant and registered clients (oauth/), when built. */
    register(
      router: Router,
      requireAdmin: (ctx: RequestContext) => Promise<Actor>,
      registered?: RegisteredClientsAtToken,
    ): void {
      registerMetadataRoutes(router, { issuer: deps.issuer, jwks: () => signingKeys.jwks() });
      registerTokenRoutes(router, { tokens, exchange, workload, registered, clientIp });
      registerSigningKeyRoutes(router, {
        db,
        signingKeys,
        audit,
        changes,
        requireAdmin,
        maxTokenLifetimeS: deps.settings.longestTokenS,
      });
    },

    close(): void {
      clearInterval(maintenance);
    },
  };
}
