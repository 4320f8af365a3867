import type { AuditSink } from "../audit/audit-sink.js";
import type { CallerAuth } from "../auth/caller-auth.js";
import type { Clock } from "../clock.js";
import type { ChangeFeed } from "../cluster/change-feed.js";
import type { CredentialRow, CredentialsStore, VersionRow } from "../credentials/credentials-store.js";
import type { CredentialMode } from "../credentials/grants-store.js";
import type { Handler } from "../http/router.js";
import type { Logger } from "../ops/logger.js";
import type { Metrics } from "../ops/metrics.js";
import { createEgressCredentials } from "./egress-credentials.js";
import { createEgressProxy } from "./egress-proxy.js";
import { createEgressHandler } from "./egress-routes.js";

/**
 * The egress proxy, wired: the credential cache (kept fresh by the change feed on every replica),
 * its own upstream connection pool, and the `/egress/…` handler (dispatched by prefix in
 * http/server.ts, like the gateway's `/agents/…`).
 */
export function createEgressModule(deps: {
  store: Pick<CredentialsStore, "get" | "getVersion">;
  /** The grants service's cached lookup. */
  credentialMode: (agent: string, name: string) => Promise<CredentialMode | null>;
  open: (v: Pick<VersionRow, "name" | "version" | "value_enc">) => string;
  /** The credentials service's check of a row's pointer MAC (credentials/credential-integrity.ts). */
  pointerIntact: (row: CredentialRow) => Promise<boolean>;
  auth: CallerAuth;
  audit: AuditSink;
  changes: ChangeFeed;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
  timeoutMs: number;
}): { handler: Handler; close(): Promise<void> } {
  const { store, logger } = deps;
  const credentials = createEgressCredentials({
    source: {
      mode: deps.credentialMode,
      get: (name) => store.get(name),
      getVersion: (name, version) => store.getVersion(name, version),
      pointerIntact: deps.pointerIntact,
      open: deps.open,
    },
    clock: deps.clock,
    logger,
  });
  deps.changes.on("credential", (name) => credentials.credentialChanged(name));
  deps.changes.onReset(() => credentials.clear());
  const proxy = createEgressProxy({ timeoutMs: deps.timeoutMs });
  return {
    handler: createEgressHandler({
      auth: deps.auth,
      credentials,
      proxy,
      audit: deps.audit,
      metrics: deps.metrics,
      logger,
    }),
    close: () => proxy.close(),
  };
}
