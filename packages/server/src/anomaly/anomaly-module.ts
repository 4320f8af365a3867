import { createBoundedCache } from "@keyward/sdk/cache";
import type { Actor } from "../admin/admin-context.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import { KeywardError } from "../errors.js";
import type { RequestContext, Router } from "../http/router.js";
import type { Logger } from "../ops/logger.js";
import type { Metrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import type { TransactionalEmitter } from "../webhooks/webhook-events.js";
import { registerAlertRoutes } from "./alerts-routes.js";
import { createAlertsService } from "./alerts-service.js";
import { createAlertsStore } from "./alerts-store.js";
import type { AnomaliesConfig, AnomalyRule } from "./anomaly-config.js";
import type { Detector, Finding } from "./detectors/detector.js";
import { DETECTOR_FACTORIES } from "./detectors/index.js";
import type { OutcomeTap } from "./outcomes.js";
import { createSharedWindows } from "./shared-windows.js";

export interface AnomalyModuleDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  audit: AuditSink;
  config: AnomaliesConfig;
  outcomes: OutcomeTap;
  /** The keys service's own freeze (the admin API's path: audit, change feed, key.frozen) and its cache. */
  keys: {
    freeze(actor: Actor, id: string, details?: Record<string, unknown>): Promise<unknown>;
    cachedById(id: string): { canary: boolean } | undefined;
  };
  webhooks?: Pick<TransactionalEmitter, "emitIn"> | undefined;
  /** How often detectors share their counts and act (default 250 ms). */
  flushMs?: number;
  /** Keys (or agents) each detector keeps state for (default 100,000). */
  maxSubjects?: number;
}

/** Findings being acted on at once at most; beyond it they are dropped (and counted in logs). */
const MAX_IN_FLIGHT = 1000;

/**
 * Anomaly detection (SPEC §10): every configured rule's detector reads the outcome tap in memory;
 * every tick they share what is near a threshold with the other replicas and hand findings here,
 * where each becomes at most one alert per incident (the store decides, across replicas) and, for
 * `action: freeze`, a freeze through the keys service by the replica whose alert won.
 */
export function createAnomalyModule(deps: AnomalyModuleDeps) {
  const { logger, metrics } = deps;
  const shared = createSharedWindows(deps.db);
  const alertsStore = createAlertsStore(deps.db);
  const alerts = createAlertsService({
    db: deps.db,
    store: alertsStore,
    clock: deps.clock,
    audit: deps.audit,
    metrics,
    webhooks: deps.webhooks,
  });
  const maxSubjects = deps.maxSubjects ?? 100_000;
  // A finding already acted on here is not sent to the store again within its cooldown.
  const recent = createBoundedCache<string, true>({ max: maxSubjects, now: () => deps.clock.now() });
  const inFlight = new Set<Promise<void>>();
  let dropped = 0;

  async function act(rule: AnomalyRule, f: Finding): Promise<void> {
    const dryFreeze = rule.action === "freeze" && rule.dryRun;
    const evidence = dryFreeze ? { ...f.evidence, would_freeze: true } : f.evidence;
    const alert = await alerts.raise({
      rule: rule.name,
      severity: rule.severity,
      keyId: f.keyId,
      evidence,
      dedupKey: f.dedupKey ?? f.keyId,
      cooldownS: rule.cooldownS,
    });
    if (alert === undefined || rule.action !== "freeze" || dryFreeze) return;
    try {
      await deps.keys.freeze({ principal: `anomaly:${rule.name}` }, f.keyId, {
        rule: rule.name,
        alert: alert.id,
        evidence,
      });
      metrics.autoFreezes.inc({ rule: rule.name });
    } catch (err) {
      // Frozen, revoked or gone already: the alert stands, there is nothing left to freeze.
      if (err instanceof KeywardError && (err.code === "conflict" || err.code === "not_found")) return;
      throw err;
    }
  }

  function report(rule: AnomalyRule, f: Finding): void {
    const id = `${rule.name}\u0000${f.dedupKey ?? f.keyId}`;
    if (recent.has(id)) return;
    if (inFlight.size >= MAX_IN_FLIGHT) {
      if (dropped++ === 0) logger.warn({ rule: rule.name }, "anomaly findings dropped: too many being acted on");
      return;
    }
    recent.set(id, true, rule.cooldownS * 1000);
    const p = act(rule, f)
      .catch((err: unknown) => {
        recent.delete(id); // not acted on: the next finding tries again
        logger.error(
          { err: err instanceof Error ? err.message : String(err), rule: rule.name, key: f.keyId },
          "anomaly action failed",
        );
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }

  const rules = deps.config.enabled ? deps.config.rules : [];
  const detectors: Detector[] = rules.map((rule) =>
    DETECTOR_FACTORIES[rule.detector]({
      rule,
      shared,
      maxSubjects,
      report: (f) => report(rule, f),
      isCanary: (id) => deps.keys.cachedById(id)?.canary === true,
    }),
  );
  const unsubscribe =
    detectors.length === 0
      ? () => {}
      : deps.outcomes.subscribe((o) => {
          for (const d of detectors) d.observe(o);
        });

  let running: Promise<void> | undefined;
  let lastPrune = 0;
  /** One tick: every detector's shared counts, then pruning of old windows (hourly). */
  async function flush(): Promise<void> {
    for (const d of detectors) {
      await d.flush().catch((err: unknown) => {
        logger.warn(
          { err: err instanceof Error ? err.message : String(err) },
          "anomaly detector could not share its counts",
        );
      });
    }
    const now = deps.clock.now();
    if (now - lastPrune > 3_600_000) {
      lastPrune = now;
      const longest = Math.max(60, ...rules.map((r) => r.windowS));
      await shared.prune(now - 2 * longest * 1000).catch(() => {});
      await alertsStore.pruneIncidents(now).catch(() => {});
    }
  }
  function tick(): Promise<void> {
    running ??= flush().finally(() => {
      running = undefined;
    });
    return running;
  }
  const timer = detectors.length === 0 ? undefined : setInterval(() => void tick(), deps.flushMs ?? 250);
  timer?.unref();

  return {
    alerts,
    rules,
    /** For the token service: a refresh token presented twice. */
    refreshReused(reuse: { keyId: string; family: string; ip: string; subject: string }): void {
      for (const rule of rules) {
        if (rule.detector !== "credential_misuse") continue;
        report(rule, {
          keyId: reuse.keyId,
          dedupKey: `${reuse.keyId}|refresh|${reuse.family}`,
          evidence: { kind: "refresh_token_reuse", family: reuse.family, address: reuse.ip, subject: reuse.subject },
        });
      }
    },
    /** Runs a tick now and waits until every finding is acted on (tests, shutdown). */
    async settle(): Promise<void> {
      await tick();
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
    register(router: Router, requireAdmin: (ctx: RequestContext) => Promise<Actor>): void {
      registerAlertRoutes(router, { alerts, requireAdmin });
    },
    async close(): Promise<void> {
      if (timer) clearInterval(timer);
      unsubscribe();
      await this.settle().catch(() => {});
    },
  };
}

export type AnomalyModule = ReturnType<typeof createAnomalyModule>;
