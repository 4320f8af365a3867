import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import type { Logger } from "../ops/logger.js";
import type { ChainKeying } from "./audit-chain.js";

/** How often a moved anchor is emitted as a checkpoint (and once more at shutdown). */
export const AUDIT_CHECKPOINT_INTERVAL_MS = 5 * 60_000;

/** A point of the chain seen from outside the database: this seq had this hash. */
export interface AuditCheckpoint {
  seq: number;
  head: string;
}

/** A checkpoint as emitted: `mac` proves Keyward made it (HMAC under the checkpoint subkey). */
export interface SignedCheckpoint extends AuditCheckpoint {
  mac: string;
}

/**
 * What this process knows about the chain apart from the database: how to link rows (keying),
 * and the highest row it has itself written or verified (its anchor). A chain that later lacks
 * that row, or holds another hash at its seq, was truncated or rolled back behind the process's
 * back. The anchor lives in memory only; checkpoints carry it beyond a restart.
 */
export interface AuditChainState {
  readonly keying: ChainKeying | undefined;
  /** Rows known committed: by this process's own appends, or by a verify that reached them. */
  witness(point: AuditCheckpoint): void;
  anchor(): AuditCheckpoint | undefined;
  /** A signed checkpoint of the anchor; undefined before anything was witnessed or without keys. */
  checkpoint(): SignedCheckpoint | undefined;
  /** Whether `mac` is Keyward's MAC over (seq, head). */
  checkpointMacValid(c: SignedCheckpoint): boolean;
}

function checkpointData(c: AuditCheckpoint): string {
  return `keyward audit checkpoint\n${c.seq}\n${c.head}`;
}

export function createAuditChainState(keying?: { keyedFrom: number; keys: IntegrityKeys }): AuditChainState {
  let anchor: AuditCheckpoint | undefined;
  return {
    keying,
    witness(point) {
      if (anchor === undefined || point.seq > anchor.seq) anchor = { seq: point.seq, head: point.head };
    },
    anchor: () => anchor,
    checkpoint() {
      if (anchor === undefined || keying === undefined) return undefined;
      return { ...anchor, mac: keying.keys.mac("auditCheckpoint", checkpointData(anchor)) };
    },
    checkpointMacValid(c) {
      return keying?.keys.verify("auditCheckpoint", checkpointData(c), c.mac) === true;
    },
  };
}

/**
 * Emits signed checkpoints: every `intervalMs` when the anchor moved, and once more at `stop()`
 * (shutdown, after the audit log has flushed). Each goes to the log at info as one line (seq,
 * head hash and MAC: none of them a secret) and to `send` when given. There is no webhook sender
 * in Keyward yet (KEYWARD_ALERT_WEBHOOK is not wired): `send` is the hook for one.
 */
export function startAuditCheckpoints(deps: {
  chain: AuditChainState;
  logger: Logger;
  intervalMs: number;
  send?: (c: SignedCheckpoint) => Promise<void>;
}): { emit(): SignedCheckpoint | undefined; stop(): void } {
  let lastSeq = 0;
  const emit = (): SignedCheckpoint | undefined => {
    const c = deps.chain.checkpoint();
    if (c === undefined || c.seq === lastSeq) return undefined;
    lastSeq = c.seq;
    deps.logger.info({ audit_checkpoint: { seq: c.seq, head: c.head, mac: c.mac } }, "audit checkpoint");
    // A failed delivery must not take the process down; the log line is already written.
    deps.send?.(c).catch((err: unknown) => {
      deps.logger.warn({ err: (err as Error)?.message, seq: c.seq }, "audit checkpoint could not be sent");
    });
    return c;
  };
  const timer = setInterval(emit, deps.intervalMs);
  timer.unref();
  return {
    emit,
    stop() {
      clearInterval(timer);
      emit();
    },
  };
}
