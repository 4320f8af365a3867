import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import type { Logger } from "../ops/logger.js";
import { type CredentialsService, PROVIDER_ACTOR, PROVIDER_TYPE, type ProviderConfig } from "./credentials-service.js";
import type { CredentialRow, CredentialsStore, VersionMeta } from "./credentials-store.js";
import { requestToken, TokenEndpointError } from "./token-provider-client.js";

/**
 * Token providers (`oauth2_client_credentials`, SPEC §6): each fetches an access token from its
 * token_url and stores it as a new version of its credential, so agents get it (and an SSE
 * `changed`) like any other new value. A token is refreshed when less than min(5 min, a third of
 * its lifetime) remains; a failure keeps the old token current until it expires (agents then get
 * `credential_unavailable` for that name, never an expired token) and retries with backoff.
 *
 * Single flight twice over: one refresh per name in this process (a shared promise), and one
 * across replicas (a lease on the credential row, taken before calling the endpoint).
 */
export interface RefreshOutcome {
  state: "refreshed" | "fresh" | "leased" | "failed" | "gone";
  version?: number;
  message?: string;
}

const MAX_MARGIN_MS = 5 * 60_000;
const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 60_000;
/** setTimeout's ceiling is ~24.8 days; a longer wait is re-planned when it fires. */
const MAX_TIMER_MS = 6 * 3600_000;

/** How refreshes are timed: real (unref'd) timers, or none at all when a test drives runDue(). */
export interface RefreshTimers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const realTimers: RefreshTimers = {
  set(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clear: (t) => clearTimeout(t as NodeJS.Timeout),
};

export function createTokenProviders(deps: {
  store: CredentialsStore;
  service: CredentialsService;
  clock: Clock;
  logger: Logger;
  audit: AuditSink;
  fetch?: typeof fetch;
  timeoutMs?: number;
  /** How long a replica may hold the refresh of one credential before another may take over. */
  leaseMs?: number;
  random?: () => number;
  timers?: RefreshTimers;
  /** Told once when a provider that worked starts failing (`token_provider.failing`). */
  onFailing?: (name: string, attempt: number) => void;
}) {
  const { store, service, clock, logger } = deps;
  const timeoutMs = deps.timeoutMs ?? 10_000;
  const leaseMs = deps.leaseMs ?? timeoutMs * 3;
  const random = deps.random ?? Math.random;
  const clockTimers = deps.timers ?? realTimers;
  const timers = new Map<string, unknown>();
  const due = new Map<string, number>();
  const failures = new Map<string, number>();
  const inflight = new Map<string, Promise<RefreshOutcome>>();
  let closed = false;

  function schedule(name: string, at: number): void {
    clockTimers.clear(timers.get(name));
    if (closed) return;
    due.set(name, at);
    const delay = Math.min(Math.max(0, at - clock.now()), MAX_TIMER_MS);
    const timer = clockTimers.set(() => {
      timers.delete(name);
      if (clock.now() >= (due.get(name) ?? 0)) void refresh(name, false);
      else plan(name).catch(() => schedule(name, clock.now() + BACKOFF_MAX_MS));
    }, delay);
    timers.set(name, timer);
  }

  function forget(name: string): void {
    clockTimers.clear(timers.get(name));
    timers.delete(name);
    due.delete(name);
    failures.delete(name);
  }

  /** When the current token must be replaced: min(5 min, a third of its lifetime) before it expires. */
  function refreshAt(current: VersionMeta | undefined): number {
    if (current?.source !== "token" || current.expires_at === null) return clock.now();
    const lifetime = current.expires_at - current.created_at;
    return current.expires_at - Math.min(MAX_MARGIN_MS, lifetime / 3);
  }

  async function load(name: string): Promise<{ row: CredentialRow; current: VersionMeta | undefined } | undefined> {
    const row = await store.get(name);
    if (!row || row.deleted_at !== null || row.type !== PROVIDER_TYPE) return undefined;
    // A token_url or client secret changed outside Keyward must not be used: the secret would go
    // wherever the row says. Such a provider is left alone until an admin sets it again.
    if (!(await service.pointerIntact(row))) return undefined;
    const current = row.current_version === null ? undefined : await store.getVersion(name, row.current_version);
    return { row, current };
  }

  /** Re-reads a provider and sets its timer (start, and after a change on any replica). */
  async function plan(name: string): Promise<void> {
    if (inflight.has(name) || closed) return;
    const found = await load(name);
    if (!found) return forget(name);
    if (found.row.status === "error" && (failures.get(name) ?? 0) > 0) return; // the backoff timer stands
    schedule(name, refreshAt(found.current));
  }

  function backoff(n: number): number {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(n - 1, 16));
    return Math.round(ceiling * (0.5 + random() / 2));
  }

  async function attempt(name: string, force: boolean): Promise<RefreshOutcome> {
    const found = await load(name);
    if (!found) {
      forget(name);
      return { state: "gone" };
    }
    const { row, current } = found;
    const at = refreshAt(current);
    if (!force && at > clock.now()) {
      schedule(name, at);
      return { state: "fresh" };
    }
    const now = clock.now();
    if (!(await store.claimRefresh(name, row.config_seq, now, now + leaseMs))) {
      // Another replica is fetching; its new version will reach us as a change. Look again after its lease.
      schedule(name, now + leaseMs);
      return { state: "leased" };
    }
    let secret: Buffer | undefined;
    try {
      secret = service.clientSecret(row);
      const token = await requestToken(JSON.parse(row.provider as string) as ProviderConfig, secret, {
        timeoutMs,
        ...(deps.fetch ? { fetch: deps.fetch } : {}),
      });
      const expiresAt = clock.now() + token.expiresIn * 1000;
      const version = await service.storeToken(name, row.config_seq, token.accessToken, expiresAt);
      failures.delete(name);
      if (version === null) {
        void plan(name); // the config changed meanwhile: plan for the new one
        return { state: "gone" };
      }
      schedule(name, expiresAt - Math.min(MAX_MARGIN_MS, (token.expiresIn * 1000) / 3));
      return { state: "refreshed", version };
    } catch (err) {
      const message =
        err instanceof TokenEndpointError ? err.message : `refresh failed: ${(err as Error).message ?? String(err)}`;
      const n = (failures.get(name) ?? 0) + 1;
      failures.set(name, n);
      logger.warn({ credential: name, attempt: n, err: message }, "token provider refresh failed");
      if (row.status !== "error") {
        deps.onFailing?.(name, n);
        deps.audit.recordLater({
          actor: PROVIDER_ACTOR,
          action: "credential.refresh",
          target: `credential:${name}`,
          outcome: "failure",
          code: "token_endpoint_error",
          details: { message },
        });
      }
      await store.setStatus(name, row.config_seq, "error", message, clock.now()).catch((e: Error) => {
        logger.error({ credential: name, err: e.message }, "cannot record token provider status");
      });
      schedule(name, clock.now() + backoff(n));
      return { state: "failed", message };
    } finally {
      secret?.fill(0);
    }
  }

  function refresh(name: string, force: boolean): Promise<RefreshOutcome> {
    let pending = inflight.get(name);
    if (!pending) {
      pending = attempt(name, force)
        .catch((err: Error): RefreshOutcome => {
          // The store failed (the endpoint's failures are handled in attempt): try again later.
          logger.warn({ credential: name, err: err.message }, "token provider refresh could not run");
          schedule(name, clock.now() + backoff((failures.get(name) ?? 0) + 1));
          return { state: "failed", message: "the store is unavailable" };
        })
        .finally(() => inflight.delete(name));
      inflight.set(name, pending);
    }
    return pending;
  }

  return {
    /** Plans a refresh for every provider in the store. */
    async start(): Promise<void> {
      for (const row of await store.listProviders()) await plan(row.name);
    },

    /**
     * Fetches a token now (after a PUT) and resolves when done. A refresh already running is
     * joined; if it was for a config that has just been replaced, a fetch with the new one follows.
     */
    async refreshNow(name: string): Promise<RefreshOutcome> {
      const outcome = await refresh(name, true);
      return outcome.state === "gone" ? refresh(name, true) : outcome;
    },

    /** Refreshes every provider whose time has come (tests drive a frozen clock with this). */
    async runDue(): Promise<RefreshOutcome[]> {
      const now = clock.now();
      const names = [...due].filter(([, at]) => at <= now).map(([name]) => name);
      return Promise.all(names.map((name) => refresh(name, false)));
    },

    /** `credential` change handler: a provider changed (here or on another replica), plan again. */
    credentialChanged(name: string): void {
      void plan(name).catch((err: Error) => logger.warn({ credential: name, err: err.message }, "cannot plan refresh"));
    },

    /** When each provider is next refreshed (epoch ms), for tests and diagnostics. */
    nextRefresh: (name: string) => due.get(name),

    close(): void {
      closed = true;
      for (const t of timers.values()) clockTimers.clear(t);
      timers.clear();
    },
  };
}

export type TokenProviders = ReturnType<typeof createTokenProviders>;
