import type { AuditEventInput, AuditSink } from "../audit/audit-sink.js";
import type { Db } from "../store/db.js";
import type { Actor } from "./admin-context.js";

/** The audit event of an admin change made by `actor`. */
export function changeEvent(
  actor: Actor,
  action: string,
  target: string,
  details?: Record<string, unknown>,
): AuditEventInput {
  return {
    actor: actor.principal,
    action,
    target,
    outcome: "success",
    ...(actor.ip ? { ip: actor.ip } : {}),
    ...(actor.requestId ? { requestId: actor.requestId } : {}),
    ...(details ? { details } : {}),
  };
}

/**
 * Runs an admin change and writes its audit record in one transaction: both land or neither does.
 * `fn` returns its result and the event describing what it did.
 */
export function auditedChange<T>(
  db: Db,
  audit: AuditSink,
  fn: (tx: Db) => Promise<{ result: T; event: AuditEventInput }>,
): Promise<T> {
  return db.transaction(async (tx) => {
    const { result, event } = await fn(tx);
    await audit.recordIn(tx, event);
    return result;
  });
}

/**
 * What a service deleting an owner (a consumer, an agent) needs from keys: revoke the owner's keys
 * in the same transaction, then drop them from the caches once it committed.
 */
export interface OwnedKeys {
  revokeIn(tx: Db, owner: string): Promise<string[]>;
  revoked(ids: readonly string[]): void;
}
