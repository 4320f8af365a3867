import type { ErrorCode } from "../errors.js";
import type { Logger } from "../ops/logger.js";

/** Where a request was decided. */
export type OutcomeSurface = "gateway" | "token" | "credentials" | "egress" | "tools" | "mcp";

/**
 * One request's outcome as Keyward decided it: the one record usage analytics count and the
 * anomaly detectors read. Built on the request path from what the decision already holds, so it
 * carries ids and names only, never a secret.
 */
export interface Outcome {
  /** ms since the epoch, from the deciding module's clock. */
  at: number;
  surface: OutcomeSurface;
  /** `allowed`, or the denial's error code. */
  code: "allowed" | ErrorCode;
  /** The key the request rests on, when one was recognised (a token's client key included). */
  keyId?: string;
  /** The key's owner (`consumer:<name>`, `agent:<name>`, …), when a key was recognised. */
  owner?: string;
  /** The agent addressed (gateway, egress) or acting (credentials, tools), when known. */
  agent?: string;
  /** The client address as Keyward resolved it (trusted proxies applied). */
  ip?: string;
}

export type OutcomeListener = (outcome: Outcome) => void;

/**
 * The fan-out from deciding modules to whoever counts outcomes. `record` runs on the request path:
 * it is synchronous, touches memory only, and a listener that throws is logged (once per listener)
 * and never fails the request.
 */
export interface OutcomeTap {
  record(outcome: Outcome): void;
  /** Adds a listener; returns its removal. */
  subscribe(listener: OutcomeListener): () => void;
}

export function createOutcomeTap(logger: Pick<Logger, "error">): OutcomeTap {
  let listeners: readonly OutcomeListener[] = [];
  const complained = new WeakSet<OutcomeListener>();
  return {
    record(outcome) {
      for (const listener of listeners) {
        try {
          listener(outcome);
        } catch (err) {
          if (complained.has(listener)) continue;
          complained.add(listener);
          logger.error({ err: err instanceof Error ? err.message : String(err) }, "an outcome listener failed");
        }
      }
    },
    subscribe(listener) {
      listeners = [...listeners, listener];
      return () => {
        listeners = listeners.filter((l) => l !== listener);
      };
    },
  };
}
