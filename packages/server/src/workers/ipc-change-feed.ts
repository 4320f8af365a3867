import type { Change, ChangeFeed, ChangeKind } from "../cluster/change-feed.js";
import { decodeChanges, encodeChanges } from "../cluster/change-message.js";
import type { Rpc } from "./ipc-rpc.js";

/**
 * How long a publishing worker waits for its siblings to apply a change before it answers with
 * `Keyward-Propagation: pending` (the siblings still get it: see the primary's relay).
 */
export const RELAY_TIMEOUT_MS = 1000;

/**
 * The change feed of one worker of `keyward serve --workers N`, around the feed its configuration
 * opened (the local one on SQLite, the replicas' one on PostgreSQL).
 *
 * The workers of one primary answer on one port: a caller that revoked a key on one worker must
 * be refused by the next worker its next connection reaches, so waiting for the replicas' feed
 * (asynchronous, or by reconciliation) is not enough between them. So:
 * - publish: runs the inner feed's publish (this worker's handlers; other replicas told on
 *   PostgreSQL), then has the primary relay the changes to every sibling, and resolves `true`
 *   once every sibling ran its handlers: an admin change that answers without
 *   `Keyward-Propagation: pending` is refused by every worker from then on. `false` when a sibling
 *   did not answer in time, the primary is gone, or the inner feed failed to tell other replicas
 *   (they still reconcile from the change log). Never rejects.
 * - a relayed change (`apply`) runs this worker's handlers only (never published again).
 * - a reset (the primary saw a sibling die: it may have committed a change it never relayed) runs
 *   the reset handlers, as a replica does when it cannot tell what it missed. On PostgreSQL the
 *   change log would also bring it, within the reconcile interval; this is sooner.
 * Handlers only drop cached state, so a change heard twice (IPC and the replicas' feed) is harmless.
 */
export function createIpcChangeFeed(inner: ChangeFeed, primary: () => Rpc | undefined) {
  const handlers = new Map<ChangeKind, Array<(ref: string) => void>>();
  const resetHandlers: Array<() => void> = [];

  function run<T>(list: readonly T[], call: (h: T) => void): void {
    for (const h of list) {
      try {
        call(h);
      } catch {
        // A failing handler must not keep the others from dropping their entries.
      }
    }
  }

  const feed: ChangeFeed = {
    record: (tx, change) => inner.record(tx, change),
    async publish(changes: readonly Change[]) {
      const told = await inner.publish(changes);
      if (changes.length === 0) return told;
      const rpc = primary();
      if (!rpc) return false;
      try {
        // The replicas' message format: bounded per message, validated where it is received.
        for (const payload of encodeChanges("worker", changes)) await rpc.call("changes", payload, RELAY_TIMEOUT_MS);
        return told;
      } catch {
        return false;
      }
    },
    on(kind, handler) {
      inner.on(kind, handler);
      const list = handlers.get(kind) ?? [];
      list.push(handler);
      handlers.set(kind, list);
    },
    onReset(handler) {
      inner.onReset(handler);
      resetHandlers.push(handler);
    },
    close: () => inner.close(),
  };
  return {
    feed,
    /** Changes relayed from a sibling: this worker's handlers run. Malformed payloads are refused. */
    apply(payload: unknown): void {
      const msg = typeof payload === "string" ? decodeChanges(payload) : undefined;
      if (!msg) throw new Error("malformed change message");
      for (const c of msg.changes) run(handlers.get(c.kind) ?? [], (h) => h(c.ref));
    },
    reset(): void {
      run(resetHandlers, (h) => h());
    },
  };
}

export type IpcChangeFeed = ReturnType<typeof createIpcChangeFeed>;
