import type { AuditEventInput, AuditSink } from "../src/audit/audit-sink.js";

/**
 * An AuditSink that keeps every event in memory, for service tests that assert what was audited.
 * `recordIn` records at once: an event of a change whose transaction later rolls back stays here.
 */
export function recordingAudit(): AuditSink & { events: AuditEventInput[] } {
  const events: AuditEventInput[] = [];
  return {
    events,
    async record(e) {
      events.push(e);
    },
    recordLater(e) {
      events.push(e);
    },
    async recordIn(_tx, e) {
      events.push(e);
    },
    async recordToken(e) {
      events.push(e);
    },
  };
}
