import { Counter } from "prom-client";
import type { Actor } from "../admin/admin-context.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import type { RequestContext, Router } from "../http/router.js";
import type { Logger } from "../ops/logger.js";
import type { Metrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import { createDeliveryWorker, DEFAULT_DELIVERY, type DeliverySettings } from "./delivery-worker.js";
import { createOutboxStore } from "./outbox-store.js";
import { endpointId } from "./webhook-signing.js";
import type { WebhookEndpointConfig } from "./webhooks-config.js";
import { registerWebhookRoutes } from "./webhooks-routes.js";
import { createWebhooksService, type TransactionalEmitter } from "./webhooks-service.js";

export interface WebhooksModuleDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  audit: AuditSink;
  /** `webhooks:` and the KEYWARD_ALERT_WEBHOOK shortcut (webhooks-config.ts `webhookEndpoints`). */
  endpoints: readonly WebhookEndpointConfig[];
  delivery?: Partial<DeliverySettings>;
}

/**
 * Signed webhooks (SPEC §10): the outbox every domain emits into, the delivery worker of this
 * replica (started with `start()`, stopped by `close()`), the deliveries admin routes, and
 * `keyward_webhook_deliveries_total{outcome}`.
 */
export function createWebhooksModule(deps: WebhooksModuleDeps) {
  const { db, clock, logger } = deps;
  const store = createOutboxStore(db);
  const settings = { ...DEFAULT_DELIVERY, ...deps.delivery };
  const deliveries = new Counter({
    name: "keyward_webhook_deliveries_total",
    help: "Webhook delivery attempts by outcome (delivered, retried, failed; released: given back at shutdown)",
    labelNames: ["outcome"],
    registers: [deps.metrics.registry],
  });
  const enqueueFailures = new Counter({
    name: "keyward_webhook_enqueue_failures_total",
    help: "Events that could not be written to the webhook outbox (logged; the change itself stood)",
    registers: [deps.metrics.registry],
  });
  const worker = createDeliveryWorker({
    store,
    endpoints: deps.endpoints.map((e) => ({ id: endpointId(e.url), url: e.url, secret: e.secret })),
    clock,
    logger,
    settings,
    onOutcome: (outcome) => deliveries.inc({ outcome }),
  });
  const webhooks = createWebhooksService({
    ...{ db, store, clock, audit: deps.audit, endpoints: deps.endpoints },
    onEnqueued: () => worker.nudge(),
  });

  /**
   * For events announced after their change committed (no transaction to join): a failed enqueue
   * is logged and counted, and never fails what already happened.
   */
  const emitter: TransactionalEmitter = {
    emitIn: webhooks.emitIn,
    async emit(type, data) {
      try {
        await webhooks.emit(type, data);
      } catch (err) {
        enqueueFailures.inc();
        logger.error({ type, err: err instanceof Error ? err.message : String(err) }, "webhook event not enqueued");
      }
    },
  };

  return {
    webhooks,
    emitter,
    worker,
    /** Starts delivering; endpoints removed from the configuration get their pending rows failed. */
    async start(): Promise<void> {
      await store.failOrphans(webhooks.endpointIds(), clock.now());
      worker.start();
    },
    register(router: Router, requireAdmin: (ctx: RequestContext) => Promise<Actor>): void {
      registerWebhookRoutes(router, { webhooks, requireAdmin });
    },
    close: () => worker.close(settings.shutdownGraceMs),
  };
}

export type WebhooksModule = ReturnType<typeof createWebhooksModule>;
