import { randomBytes } from "node:crypto";
import { createBoundedCache } from "@keyward/sdk/cache";
import type { Clock } from "../clock.js";
import type { Logger } from "../ops/logger.js";
import type { Change, ChangeFeed, ChangeKind } from "./change-feed.js";
import {
  type ChangeTransport,
  decodeChanges,
  describeError,
  encodeChanges,
  type SentChange,
} from "./change-message.js";
import type { ChangesStore } from "./changes-store.js";

/** Changes are kept this long; a replica that falls further behind starts over (a reset). */
export const CHANGE_RETENTION_MS = 24 * 3600_000;
const PRUNE_EVERY_MS = 10 * 60_000;
const PAGE = 1000;
const MAX_APPLIED_AHEAD = 100_000;
/** How long startup waits for pub/sub before serving anyway (reconciliation covers the gap). */
const START_WAIT_MS = 3000;

export interface ClusterFeedOptions {
  store: ChangesStore;
  transport: ChangeTransport;
  clock: Clock;
  logger: Logger;
  /** How often the change log is read for what pub/sub did not deliver. */
  reconcileIntervalMs: number;
  /** How long caches may be trusted without a successful read of the change log. */
  maxStalenessMs: number;
}

export interface ClusterChangeFeed extends ChangeFeed {
  /** Reads where the log stands (nothing older needs applying: caches start empty) and listens. */
  start(): Promise<void>;
  /** Applies every logged change after the last one applied. Never rejects. */
  reconcile(): Promise<void>;
}

/**
 * The change feed of a replica sharing a PostgreSQL store with others.
 *
 * - record: appends the change to the `changes` log in the change's transaction (commit-ordered seq).
 * - publish: runs this replica's handlers, then sends the changes on the transport (Redis pub/sub or
 *   LISTEN/NOTIFY); the other replicas run their handlers when the message arrives.
 * - reconcile: after every (re)subscription and every `reconcileIntervalMs`, applies each logged
 *   change with seq > the last one applied. A dropped message, a failed publish, or a replica that
 *   died between commit and publish therefore delays an invalidation by one interval at most.
 * - staleness: while the log cannot be read (PostgreSQL unreachable from this replica) the caches
 *   are trusted for `maxStalenessMs`, then dropped on every tick until a read succeeds again, so a
 *   partitioned replica cannot go on admitting a key revoked elsewhere.
 */
export function createClusterChangeFeed(opts: ClusterFeedOptions): ClusterChangeFeed {
  const { store, transport, clock } = opts;
  const log = opts.logger.child({ component: "cluster", transport: transport.name });
  const origin = randomBytes(8).toString("hex");
  const handlers = new Map<ChangeKind, Array<(ref: string) => void>>();
  const resetHandlers: Array<() => void> = [];

  let last: number | undefined;
  // Seqs above `last` already applied from a message (or published here): reconciliation skips
  // them, so a key loaded again right after its invalidation is not dropped a second time.
  // When full the oldest seq is forgotten (one more invalidation of its ref), never all of them:
  // a clear would re-apply up to MAX_APPLIED_AHEAD invalidations at once on the next poll.
  const appliedAhead = createBoundedCache<number, true>({ max: MAX_APPLIED_AHEAD });
  // The seq `record` got for each change, so `publish` can send it along.
  const seqOf = new WeakMap<Change, number>();
  let confirmedAt = clock.now();
  let failing = false;
  let stale = false;
  let lastPrune = 0;
  let running: Promise<void> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  function apply(kind: ChangeKind, ref: string): void {
    for (const h of handlers.get(kind) ?? []) {
      try {
        h(ref);
      } catch (err) {
        log.error({ kind, err: describeError(err) }, "change handler failed");
      }
    }
  }

  function reset(reason: string, quiet = false): void {
    if (!quiet) log.warn({ reason }, "dropping every cached entry: this replica cannot tell which changes it missed");
    for (const h of resetHandlers) {
      try {
        h();
      } catch (err) {
        log.error({ err: describeError(err) }, "reset handler failed");
      }
    }
  }

  async function reconcileOnce(): Promise<void> {
    const startedAt = clock.now();
    try {
      if (last === undefined) {
        last = await store.head();
      } else {
        for (;;) {
          const rows = await store.after(last, PAGE);
          // Seqs are dense; a hole at the start means the rows were pruned before we read them.
          if (rows[0] && rows[0].seq !== last + 1) reset(`change log pruned past seq ${last}`);
          for (const r of rows) {
            if (appliedAhead.has(r.seq)) appliedAhead.delete(r.seq);
            else apply(r.kind, r.ref);
          }
          const tail = rows.at(-1);
          if (tail) last = tail.seq;
          if (rows.length < PAGE || closed) break;
        }
        const upTo = last;
        appliedAhead.deleteWhere((_, seq) => seq <= upTo);
      }
      confirmedAt = startedAt;
      if (failing) log.info("change log readable again");
      failing = false;
      stale = false;
    } catch (err) {
      if (!failing) {
        log.warn({ err: describeError(err) }, "cannot read the change log; caches are trusted for max_staleness_ms");
      }
      failing = true;
    }
  }

  function reconcile(): Promise<void> {
    if (running) {
      // A change may have committed after the running read took its snapshot: read once more.
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await reconcileOnce();
      } while (again && !closed);
    })().finally(() => {
      running = undefined;
    });
    return running;
  }

  async function prune(): Promise<void> {
    try {
      await store.prune(clock.now() - CHANGE_RETENTION_MS);
    } catch (err) {
      log.debug({ err: describeError(err) }, "pruning the change log failed; retried later");
    }
  }

  function tick(): void {
    const now = clock.now();
    if (now - confirmedAt > opts.maxStalenessMs) {
      // Again on every tick while it lasts: whatever was loaded since the last reset may have
      // changed since, and nothing would tell us.
      reset("change log unreadable for longer than max_staleness_ms", stale);
      stale = true;
    }
    void reconcile();
    if (now - lastPrune > PRUNE_EVERY_MS) {
      lastPrune = now;
      void prune();
    }
  }

  /** False when reconciliation (or an earlier message) applied this change already. */
  function firstTime(seq: number | undefined): boolean {
    if (seq === undefined) return true;
    if (last !== undefined && seq <= last) return false;
    if (appliedAhead.has(seq)) return false;
    // Forgetting costs a second invalidation, never a missed one.
    appliedAhead.set(seq, true);
    return true;
  }

  function onMessage(payload: string): void {
    const msg = decodeChanges(payload);
    if (!msg) {
      log.warn("ignoring a malformed change message");
      return;
    }
    if (msg.origin === origin) return;
    for (const c of msg.changes) if (firstTime(c.seq)) apply(c.kind, c.ref);
  }

  return {
    async record(tx, change) {
      seqOf.set(change, await store.append(tx, change, clock.now()));
    },

    async publish(changes: readonly Change[]) {
      const sent: SentChange[] = changes.map((c) => {
        const seq = seqOf.get(c);
        return seq === undefined ? c : { ...c, seq };
      });
      for (const c of sent) if (firstTime(c.seq)) apply(c.kind, c.ref);
      if (changes.length === 0 || closed) return true;
      try {
        for (const payload of encodeChanges(origin, sent)) await transport.send(payload);
        return true;
      } catch (err) {
        log.warn(
          { changes: changes.length, err: describeError(err), reconcile_interval_ms: opts.reconcileIntervalMs },
          "change committed but not published: other replicas apply it at their next reconciliation",
        );
        return false;
      }
    },

    on(kind, handler) {
      const list = handlers.get(kind) ?? [];
      list.push(handler);
      handlers.set(kind, list);
    },

    onReset(handler) {
      resetHandlers.push(handler);
    },

    async start() {
      last = await store.head();
      confirmedAt = clock.now();
      lastPrune = clock.now() - PRUNE_EVERY_MS + 60_000; // first prune a minute after start
      transport.start(onMessage, () => void reconcile());
      timer = setInterval(tick, opts.reconcileIntervalMs);
      timer.unref();
      let wait: NodeJS.Timeout | undefined;
      const up = await Promise.race([
        transport.ready().then(() => true),
        new Promise<false>((resolve) => {
          wait = setTimeout(() => resolve(false), START_WAIT_MS);
        }),
      ]);
      clearTimeout(wait);
      if (!up) {
        log.warn("starting without pub/sub: changes reach this replica by reconciliation until it connects");
      }
    },

    reconcile,

    async close() {
      closed = true;
      clearInterval(timer);
      await transport.close();
      await running;
    },
  };
}
