import type { Db } from "../store/db.js";

/**
 * What changed, named well enough for every replica to drop what it caches about it.
 * `ref` is the changed thing's id within its kind (a key id, an agent name, a credential name…).
 */
export type ChangeKind =
  | "key"
  | "agent"
  | "consumer"
  | "signing_key"
  | "token_revocation"
  | "credential"
  | "grant"
  | "user_credential";

export interface Change {
  kind: ChangeKind;
  ref: string;
}

/**
 * How a change reaches every replica's caches (SPEC §9, issue 5).
 *
 * A change is recorded in the store inside the transaction that makes it (so it is as durable as
 * the change itself and ordered with it), then published after commit. Every replica runs the
 * handlers for every change, its own included; handlers only drop cached state, so running one
 * twice is harmless. Publishing is a fast path: a replica that missed a message (a reconnect, a
 * failed publish) still gets the change from the recorded log by reconciliation.
 */
export interface ChangeFeed {
  /** Inside the change's transaction: appends it to the change log. */
  record(tx: Db, change: Change): Promise<void>;
  /**
   * After commit: runs this replica's handlers at once, then tells the others. Resolves `false`
   * when telling the others failed (they will still reconcile from the log); never rejects.
   */
  publish(changes: readonly Change[]): Promise<boolean>;
  /** A handler for every change of `kind`, on this replica. Must be idempotent and cheap. */
  on(kind: ChangeKind, handler: (ref: string) => void): void;
  /**
   * A handler for "anything may have changed": this replica cannot tell what it missed (it could
   * not reach the change log for longer than `max_staleness_ms`, or the log was pruned past what it
   * had applied). Drop everything cached. Must be idempotent and cheap.
   */
  onReset(handler: () => void): void;
  close(): Promise<void>;
}

export const CHANGE_KINDS: ReadonlySet<ChangeKind> = new Set<ChangeKind>([
  "key",
  "agent",
  "consumer",
  "signing_key",
  "token_revocation",
  "credential",
  "grant",
  "user_credential",
]);

/**
 * The single-process feed: handlers run in-process and nothing is recorded (with one process per
 * SQLite file there is nobody else to tell).
 */
export function createLocalChangeFeed(): ChangeFeed {
  const handlers = new Map<ChangeKind, Array<(ref: string) => void>>();
  return {
    async record() {},
    async publish(changes) {
      for (const c of changes) for (const h of handlers.get(c.kind) ?? []) h(c.ref);
      return true;
    },
    on(kind, handler) {
      const list = handlers.get(kind) ?? [];
      list.push(handler);
      handlers.set(kind, list);
    },
    // One process sees every change as it happens: it never has to start over.
    onReset() {},
    async close() {},
  };
}
