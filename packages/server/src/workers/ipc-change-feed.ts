import type { Change, ChangeFeed } from "../cluster/change-feed.js";
import { decodeChanges, encodeChanges } from "../cluster/change-message.js";
import type { Rpc } from "./ipc-rpc.js";

/**
 * How long a publishing worker waits for its siblings to apply a change before it answers with
 * `Keyward-Propagation: pending` (the siblings still get it: see the primary's relay).
 */
export const RELAY_TIMEOUT_MS = 1000;

/**
 * The change feed of one worker of `keyward serve --workers N` on SQLite, where no change log nor
 * pub/sub exists: the workers of one primary are the only processes on the file, so the primary
 * relays each change to every sibling over IPC and answers once all of them applied it.
 *
 * - publish: runs this worker's handlers, then asks the primary to relay; resolves `true` once
 *   every sibling has run its handlers (so an admin change that answers without
 *   `Keyward-Propagation: pending` is refused by every worker from then on), `false` when one did
 *   not answer in time or the primary is gone. Never rejects.
 * - a relayed change (`apply`) runs the same handlers.
 * - a reset (the primary saw a worker die: it may have committed a change it never relayed) drops
 *   everything cached, as a replica does when it cannot tell what it missed.
 *
 * On PostgreSQL workers use the replicas' feed (cluster/) unchanged: the change log covers them.
 */
export function createIpcChangeFeed(local: ChangeFeed, primary: () => Rpc | undefined) {
  const resetHandlers: Array<() => void> = [];
  const feed: ChangeFeed = {
    record: (tx, change) => local.record(tx, change),
    async publish(changes: readonly Change[]) {
      await local.publish(changes);
      const rpc = primary();
      if (changes.length === 0) return true;
      if (!rpc) return false;
      try {
        // The replicas' message format (bounded, validated on receipt), origin unused here.
        for (const payload of encodeChanges("worker", changes)) {
          await rpc.call("changes", payload, RELAY_TIMEOUT_MS);
        }
        return true;
      } catch {
        return false;
      }
    },
    on: (kind, handler) => local.on(kind, handler),
    onReset(handler) {
      resetHandlers.push(handler);
      local.onReset(handler);
    },
    close: () => local.close(),
  };
  return {
    feed,
    /** A change relayed from a sibling: runs this worker's handlers. Malformed payloads are refused. */
    async apply(payload: unknown): Promise<void> {
      const msg = typeof payload === "string" ? decodeChanges(payload) : undefined;
      if (!msg) throw new Error("malformed change message");
      await local.publish(msg.changes);
    },
    reset(): void {
      for (const h of resetHandlers) h();
    },
  };
}

export type IpcChangeFeed = ReturnType<typeof createIpcChangeFeed>;
