import type { Db } from "../store/db.js";

/**
 * How long an audit write may take before it counts as failed (`database.audit_write_timeout_ms`).
 * A write that stalls (a lock held by a stopped replica, a silent connection) then fails closed like
 * one that errors, instead of leaving requests to go out unaudited behind it.
 */
export const DEFAULT_AUDIT_WRITE_TIMEOUT_MS = 5000;

/**
 * What services need from the audit log: a durable `record` for changes and tokens, and a
 * fire-and-forget `recordLater` for the request hot path. Implemented by audit-log.ts.
 */
export type AuditOutcome = "success" | "denied" | "failure";

export interface AuditEventInput {
  actor: string;
  action: string;
  target?: string;
  outcome: AuditOutcome;
  code?: string;
  ip?: string;
  requestId?: string;
  details?: Record<string, unknown>;
}

export interface AuditSink {
  record(e: AuditEventInput): Promise<void>;
  recordLater(e: AuditEventInput): void;
  /**
   * Records a change inside the transaction that makes it, so the change and its record commit
   * together or not at all (fail closed, the default). With `audit_fail_closed: false` the record
   * is queued after the change instead, and a failure to write it is logged and counted.
   */
  recordIn(tx: Db, e: AuditEventInput): Promise<void>;
  /**
   * Records an issued token off the request path; when failing closed (the default) it throws
   * AuditWriteError instead while the log is known to be failing, so no token is issued then.
   */
  recordToken(e: AuditEventInput): Promise<void>;
}
