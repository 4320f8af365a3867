import type { Actor } from "../admin/admin-context.js";
import { changeEvent } from "../admin/audited-change.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import { newId } from "../crypto/secret-format.js";
import { notFound } from "../errors.js";
import type { Metrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import type { TransactionalEmitter } from "../webhooks/webhook-events.js";
import { type Alert, type AlertRaiser, DEFAULT_COOLDOWN_S, type RaiseInput } from "./alert-types.js";
import type { AlertView } from "./alerts-schemas.js";
import type { AlertCursor, AlertFilter, AlertRow, AlertsStore } from "./alerts-store.js";

export type { Alert, AlertRaiser, AlertSeverity, AlertStatus, RaiseInput } from "./alert-types.js";
export { DEFAULT_COOLDOWN_S } from "./alert-types.js";

export interface AlertsServiceDeps {
  db: Db;
  store: AlertsStore;
  clock: Clock;
  audit: AuditSink;
  metrics: Pick<Metrics, "alerts">;
  /** Enqueues `alert.created` in the alert's own transaction (the outbox); absent in tests without it. */
  webhooks?: Pick<TransactionalEmitter, "emitIn"> | undefined;
}

export function toAlert(row: AlertRow): Alert {
  return {
    id: row.id,
    rule: row.rule,
    severity: row.severity,
    status: row.status,
    keyId: row.key_id,
    createdAt: Number(row.created_at),
    evidence: JSON.parse(row.evidence) as Record<string, unknown>,
  };
}

/**
 * Alerts: raised by detectors and leak reports, one per incident across replicas (the store's
 * incident row, claimed with a conditional upsert, holds the cooldown), listed and acked by admins.
 */
export function createAlertsService(deps: AlertsServiceDeps) {
  const { db, store, clock } = deps;

  async function raise(input: RaiseInput): Promise<Alert | undefined> {
    const now = clock.now();
    const dedupKey = input.dedupKey ?? input.keyId ?? "";
    const until = now + (input.cooldownS ?? DEFAULT_COOLDOWN_S) * 1000;
    const row: AlertRow = {
      id: newId("alert"),
      rule: input.rule,
      severity: input.severity,
      status: "open",
      key_id: input.keyId ?? null,
      created_at: now,
      evidence: JSON.stringify(input.evidence),
      dedup_key: dedupKey,
      acked_at: null,
      acked_by: null,
    };
    const raised = await db.transaction(async (tx) => {
      if (!(await store.claimIncident(tx, row.rule, dedupKey, row.id, now, until))) return false;
      await store.insert(tx, row);
      // In the same transaction: the alert and its announcement commit together, so the one
      // replica that won the incident is the one that announces it, exactly once.
      await deps.webhooks?.emitIn(tx, "alert.created", alertView(toAlert(row)));
      return true;
    });
    if (!raised) return undefined;
    deps.metrics.alerts.inc({ rule: row.rule, severity: row.severity });
    return toAlert(row);
  }

  return {
    raise,

    async list(filter: AlertFilter, after: AlertCursor | undefined, limit: number): Promise<Alert[]> {
      return (await store.list(filter, after, limit)).map(toAlert);
    },

    async get(id: string): Promise<Alert> {
      const row = await store.get(id);
      if (!row) throw notFound(`alert ${id}`);
      return toAlert(row);
    },

    /** Acks an alert (idempotent: acking an acked alert changes nothing and is not audited again). */
    async ack(actor: Actor, id: string): Promise<Alert> {
      const row = await db.transaction(async (tx) => {
        const { acked, row } = await store.ack(tx, id, actor.principal, clock.now());
        if (!row) throw notFound(`alert ${id}`);
        if (acked) await deps.audit.recordIn(tx, changeEvent(actor, "alert.ack", id, { rule: row.rule }));
        return row;
      });
      return toAlert(row);
    },
  } satisfies AlertRaiser & Record<string, unknown>;
}

/** An alert's public shape, from an explicit list of fields: the admin API's and `alert.created`'s data. */
export function alertView(a: Alert): AlertView {
  return {
    id: a.id,
    rule: a.rule,
    severity: a.severity,
    status: a.status,
    ...(a.keyId !== null ? { key_id: a.keyId } : {}),
    created_at: new Date(a.createdAt).toISOString(),
    evidence: a.evidence,
  };
}

export type AlertsService = ReturnType<typeof createAlertsService>;
