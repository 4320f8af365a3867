import type { AuditEventInput, AuditSink } from "../audit/audit-sink.js";
import type { Change, ChangeFeed } from "../cluster/change-feed.js";
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

/** Where an admin change announces what it changed, and who to tell if that fails. */
export interface ChangePublishing {
  feed: ChangeFeed;
  actor: Actor;
}

/**
 * Runs an admin change and writes its audit record in one transaction: both land or neither does.
 * `fn` returns its result, the event describing what it did, and the cached things it changed.
 *
 * The changes are recorded in the same transaction (so a replica that misses the message still
 * finds them in the change log), then published after commit and before returning, so the caller
 * answers only once every replica has been told. If telling them failed, the actor hears of it
 * (the response says `Keyward-Propagation: pending`): the change stands, and the other replicas
 * apply it at their next reconciliation.
 */
export async function auditedChange<T>(
  db: Db,
  audit: AuditSink,
  fn: ChangeFn<T>,
  publishing?: ChangePublishing,
): Promise<T> {
  const { result, changes } = await db.transaction(async (tx) => {
    const { result, event, changes = [] } = await fn(tx);
    await audit.recordIn(tx, event);
    if (changes.length > 0) {
      // A change that names what it changed but cannot tell anyone must not commit.
      if (!publishing) throw new Error("auditedChange: changes given without a change feed");
      for (const c of changes) await publishing.feed.record(tx, c);
    }
    return { result, changes };
  });
  if (publishing && changes.length > 0 && !(await publishing.feed.publish(changes))) {
    publishing.actor.propagationPending?.();
  }
  return result;
}

export type ChangeFn<T> = (tx: Db) => Promise<{ result: T; event: AuditEventInput; changes?: readonly Change[] }>;

/** `auditedChange` bound to a service's store, audit log and change feed: `change(actor, fn)`. */
export function changeRunner(db: Db, audit: AuditSink, feed: ChangeFeed) {
  return <T>(actor: Actor, fn: ChangeFn<T>): Promise<T> => auditedChange(db, audit, fn, { feed, actor });
}

/**
 * What a service deleting an owner (a consumer, an agent) needs from keys: revoke the owner's keys
 * in the same transaction (the service lists them among its changes, so every replica drops
 * them), then drop them from this process's caches once it committed.
 */
export interface OwnedKeys {
  revokeIn(tx: Db, owner: string): Promise<string[]>;
  revoked(ids: readonly string[]): void;
}
