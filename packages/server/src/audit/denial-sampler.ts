import { createBoundedCache } from "@keyward/sdk/cache";
import { Counter, type Registry } from "prom-client";
import type { Clock } from "../clock.js";
import type { AuditEventInput, AuditSink } from "./audit-sink.js";

/**
 * Samples the audit records of denials nobody authenticated (issue 18, finding 3).
 *
 * A request with no valid credential costs its sender nothing, and each one used to become a row:
 * a loop of them fills the disk. Such denials are recorded up to `perAddressPerMinute` per source
 * address and `perMinute` in all (so rotating addresses through a trusted proxy cannot defeat the
 * per-address budget); the rest are counted, and when the window ends one summary record per
 * address that was cut (plus one for the global cap) says how many were left out. Denials of a
 * known key are never sampled: they go through `record` unchanged.
 *
 * Bounds: per window, at most `perMinute` sampled records plus `perMinute / perAddressPerMinute
 * + 1` summaries (an address is cut only after it was recorded `perAddressPerMinute` times), and
 * at most `maxAddresses` addresses tracked (the least recently seen is forgotten first, so an
 * address that keeps sending stays counted however many others pass by; a forgotten address
 * starts a fresh budget, still within the global cap).
 */
export interface DenialLimits {
  perAddressPerMinute: number;
  perMinute: number;
  maxAddresses: number;
}

export const DEFAULT_DENIAL_LIMITS: DenialLimits = { perAddressPerMinute: 20, perMinute: 600, maxAddresses: 10_000 };

const WINDOW_MS = 60_000;

interface AddressCount {
  ip: string;
  recorded: number;
  suppressed: number;
}

export interface DenialSampler {
  /** Records `e`, an unauthenticated denial from `e.ip`, unless this window's budget is spent. */
  record(e: AuditEventInput): void;
  /** Ends the window now: summaries of what was left out are recorded. */
  flush(): void;
  close(): void;
}

export function createDenialSampler(deps: {
  audit: AuditSink;
  clock: Clock;
  limits?: DenialLimits;
  /** Where `keyward_audit_denials_suppressed_total` is registered (the app's metrics registry). */
  registry?: Registry;
}): DenialSampler {
  const limits = deps.limits ?? DEFAULT_DENIAL_LIMITS;
  const suppressedTotal = new Counter({
    name: "keyward_audit_denials_suppressed_total",
    help: "Audit records of unauthenticated denials left out by sampling (summarised per window)",
    registers: deps.registry ? [deps.registry] : [],
  });
  let windowStart = deps.clock.now();
  let recorded = 0;
  let globallySuppressed = 0;
  const addresses = createBoundedCache<string, AddressCount>({
    max: limits.maxAddresses,
    // Its left-out count is not lost: the global summary carries it.
    onEvict: (_ip, old) => {
      globallySuppressed += old.suppressed;
    },
  });

  function flush(): void {
    const now = deps.clock.now();
    const windowS = Math.max(1, Math.round((now - windowStart) / 1000));
    for (const c of addresses.values()) {
      if (c.suppressed === 0) continue;
      const ip = c.ip;
      deps.audit.recordLater({
        actor: "anonymous",
        action: "audit.denials_suppressed",
        outcome: "denied",
        ip,
        details: { suppressed: c.suppressed, window_s: windowS, reason: "per_address" },
      });
    }
    if (globallySuppressed > 0) {
      deps.audit.recordLater({
        actor: "anonymous",
        action: "audit.denials_suppressed",
        outcome: "denied",
        details: { suppressed: globallySuppressed, window_s: windowS, reason: "global" },
      });
    }
    addresses.clear();
    recorded = 0;
    globallySuppressed = 0;
    windowStart = now;
  }

  // Summaries go out at the end of each window even if the flood stopped; the timer never holds
  // the process open.
  const timer = setInterval(() => {
    if (deps.clock.now() - windowStart >= WINDOW_MS) flush();
  }, WINDOW_MS / 4);
  timer.unref();

  return {
    record(e) {
      if (deps.clock.now() - windowStart >= WINDOW_MS) flush();
      // An address is an IP (caller-auth validates X-Forwarded-For hops); cut anyway, it is a map key.
      const ip = (e.ip ?? "").slice(0, 64);
      let c = addresses.get(ip);
      if (c === undefined) {
        c = { ip, recorded: 0, suppressed: 0 };
        addresses.set(ip, c);
      }
      if (c.recorded >= limits.perAddressPerMinute) {
        c.suppressed++;
        suppressedTotal.inc();
        return;
      }
      if (recorded >= limits.perMinute) {
        globallySuppressed++;
        suppressedTotal.inc();
        return;
      }
      c.recorded++;
      recorded++;
      deps.audit.recordLater(e);
    },
    flush,
    close() {
      clearInterval(timer);
      flush();
    },
  };
}
