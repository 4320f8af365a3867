import { createBoundedCache } from "@keyward/sdk/cache";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import type { Logger } from "../ops/logger.js";
import type { CredentialRow } from "./credentials-store.js";
import type { GrantRow } from "./grants-store.js";

/**
 * Which value an agent is served is decided by rows an insider with database write access could
 * edit: a credential's current-version pointer (and where its value goes: egress, token provider)
 * and the grant rows. Each such row carries Keyward's MAC under a subkey of the integrity root
 * (crypto/README.md, invariants 7–10), computed in the transaction that writes it. Invariants:
 *
 * - a credential row whose `pointer_mac` does not verify serves nothing (503
 *   `credential_unavailable`), and a grant row whose `mac` does not verify grants nothing;
 * - the pointer MAC covers name, type, current and latest version, egress, provider config, the
 *   config seq (which binds the sealed client secret) and deletion; not the refresh status and
 *   lease columns, which the refresher updates alone and which decide nothing that is served;
 * - a stale but genuine row put back (an earlier pointer with its earlier MAC) is caught while
 *   the newer versions exist: a version above `latest_version` means the row was rolled back;
 * - a grant MAC covers agent, kind, name and mode; tombstones (`mode = 'none'`) grant nothing and
 *   carry none;
 * - every refusal is logged at error level and audited (`credential.tamper_detected`,
 *   `grant.tamper_detected`) by record name, never by value, at most once per record per interval.
 */
export type PointerFields = Pick<
  CredentialRow,
  "name" | "type" | "current_version" | "latest_version" | "egress" | "provider" | "config_seq" | "deleted_at"
>;
export type GrantFields = Pick<GrantRow, "agent" | "kind" | "name" | "mode">;

/** JSON arrays: no field can run into the next, whatever it holds. */
export function pointerData(r: PointerFields): string {
  return JSON.stringify([
    "credential pointer",
    r.name,
    r.type,
    r.current_version,
    r.latest_version,
    r.egress,
    r.provider,
    r.config_seq,
    r.deleted_at !== null,
  ]);
}

export function grantData(g: GrantFields): string {
  return JSON.stringify(["grant", g.agent, g.kind, g.name, g.mode]);
}

export const pointerMac = (keys: IntegrityKeys, r: PointerFields): string =>
  keys.mac("credentialPointer", pointerData(r));

/** Null for a tombstone: it grants nothing, so there is nothing to forge. */
export const grantMac = (keys: IntegrityKeys, g: GrantFields): string | null =>
  g.mode === "none" ? null : keys.mac("grant", grantData(g));

/** At most one alarm per record in this interval, and this many alarms a minute in all. */
const ALARM_INTERVAL_MS = 5 * 60_000;
const ALARMS_PER_MINUTE = 30;
const MAX_TRACKED = 10_000;

export function createCredentialIntegrity(deps: {
  keys: IntegrityKeys;
  audit: AuditSink;
  logger: Logger;
  clock: Clock;
}) {
  const { keys, audit, logger, clock } = deps;
  /** Records alarmed within the interval; when full, the oldest alarm is forgotten, not all of them. */
  const recentAlarms = createBoundedCache<string, true>({
    max: MAX_TRACKED,
    ttlMs: ALARM_INTERVAL_MS,
    now: () => clock.now(),
  });
  let windowStart = 0;
  let inWindow = 0;
  let suppressed = 0;

  function alarm(action: "credential.tamper_detected" | "grant.tamper_detected", target: string, reason: string) {
    const now = clock.now();
    const key = `${action}\0${target}\0${reason}`;
    if (recentAlarms.has(key)) return;
    if (now - windowStart >= 60_000) {
      if (suppressed > 0) logger.error({ suppressed }, "integrity alarms suppressed in the last minute");
      windowStart = now;
      inWindow = 0;
      suppressed = 0;
    }
    if (inWindow >= ALARMS_PER_MINUTE) {
      suppressed++;
      return;
    }
    inWindow++;
    recentAlarms.set(key, true);
    logger.error({ action, target, reason }, "integrity check failed: row refused (written without Keyward?)");
    audit.recordLater({
      actor: "keyward:integrity",
      action,
      target,
      outcome: "denied",
      code: "tamper_detected",
      details: { reason },
    });
  }

  return {
    pointerMac: (r: PointerFields) => pointerMac(keys, r),
    grantMac: (g: GrantFields) => grantMac(keys, g),

    /**
     * Does this row say what Keyward last wrote? `maxVersion` is the highest version stored for
     * the name (null: none). False (and an alarm) otherwise.
     */
    pointerIntact(r: PointerFields & { pointer_mac: string | null }, maxVersion: number | null): boolean {
      let reason: string | undefined;
      if (r.pointer_mac === null || !keys.verify("credentialPointer", pointerData(r), r.pointer_mac)) {
        reason = "pointer_mac";
      } else if (maxVersion !== null && maxVersion > r.latest_version) {
        reason = "rolled_back";
      }
      if (reason === undefined) return true;
      alarm("credential.tamper_detected", `credential:${r.name}`, reason);
      return false;
    },

    /** A grant row that Keyward did not write is treated as absent. Tombstones always pass. */
    grantIntact(g: GrantFields & { mac: string | null }): boolean {
      if (g.mode === "none") return true;
      if (g.mac !== null && keys.verify("grant", grantData(g), g.mac)) return true;
      alarm("grant.tamper_detected", `agent:${g.agent}`, `${g.kind}:${g.name}`);
      return false;
    },
  };
}

export type CredentialIntegrity = ReturnType<typeof createCredentialIntegrity>;
