import type { Clock } from "../clock.js";
import { KeywardError } from "../errors.js";
import type { Logger } from "../ops/logger.js";
import type { Metrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import type { AuditChainState, AuditCheckpoint } from "./audit-checkpoints.js";
import { type AuditEvent, decodeCursor, encodeCursor, toEvent, toRow } from "./audit-event.js";
import { type AuditEventInput, type AuditSink, DEFAULT_AUDIT_WRITE_TIMEOUT_MS } from "./audit-sink.js";
import { type AuditListFilter, type AuditRowInput, createAuditStore } from "./audit-store.js";
import { type AuditVerifyResult, verifyAuditChain } from "./audit-verify.js";

export type { AuditEvent } from "./audit-event.js";
// The input types live in audit-sink.ts, the narrow interface services depend on.
export type { AuditEventInput, AuditOutcome } from "./audit-sink.js";

// `| undefined` so a parsed query (zod leaves absent fields undefined) passes straight through.
export interface AuditListQuery {
  /** Epoch ms, inclusive. */
  since?: number | undefined;
  /** Epoch ms, exclusive. */
  until?: number | undefined;
  action?: string | undefined;
  /** Matches the actor or the target. */
  principal?: string | undefined;
  limit: number;
  cursor?: string | undefined;
}

export type { AuditVerifyResult } from "./audit-verify.js";

export interface AuditLog extends AuditSink {
  /** Queues the event; resolves once it is durably written, rejects (AuditWriteError) if it cannot be. */
  record(e: AuditEventInput): Promise<void>;
  /** Fire-and-forget for the request hot path (denials): queued, a failure is logged and counted, never thrown. */
  recordLater(e: AuditEventInput): void;
  /** Resolves when everything queued so far is written (or failed). */
  flush(): Promise<void>;
  /** Newest first; the cursor is opaque. */
  list(q: AuditListQuery): Promise<{ events: AuditEvent[]; next_cursor: string | null }>;
  /** Walks the chain; also checks it against this process's anchor and `checkpoint` when given. */
  verify(checkpoint?: AuditCheckpoint): Promise<AuditVerifyResult>;
  /** Flushes, then refuses new events. */
  close(): Promise<void>;
}

/** An audit record that could not be written. A request that must be audited fails with it (503). */
export class AuditWriteError extends KeywardError {
  constructor(message: string, cause?: unknown) {
    super("audit_unavailable", message);
    this.name = "AuditWriteError";
    if (cause !== undefined) this.cause = cause;
  }
}

export const DEFAULT_MAX_QUEUE = 10_000;
const MAX_PAGE = 1000;
const DROP_WARN_INTERVAL_MS = 10_000;
/** A write in flight this long means the log is falling behind: tokens then wait for their record. */
const LAG_MS = 100;

interface Queued {
  input: AuditEventInput;
  /** Taken when the event happened, not when its batch was written. */
  time: number;
  // Absent for recordLater: the hot path allocates no promise.
  resolve?: () => void;
  reject?: (err: AuditWriteError) => void;
  /** The deadline of an awaited event (record, a token's record while the log is failing). */
  timer?: NodeJS.Timeout;
  /** Taken into a batch. */
  started?: boolean;
  /** Counted as failed (and its waiter told) already: counted once, and as late if it commits. */
  failed?: boolean;
  /** Failed before its batch began: not written at all. */
  cancelled?: boolean;
}

/**
 * The audit log, written by group commit: events queue in memory; one writer drains everything
 * queued so far in one transaction and, if more arrived meanwhile, starts again on the next turn.
 * At low load an event waits for one transaction; under load batches grow instead of transactions
 * piling up. The queue is bounded so a dead store cannot exhaust memory.
 */
export function createAuditLog(deps: {
  db: Db;
  clock: Clock;
  logger: Logger;
  metrics?: Metrics;
  maxQueue?: number;
  /** Changes fail when their record cannot be written (default true). */
  failClosed?: boolean;
  /** A write not committed within this counts as failed (default DEFAULT_AUDIT_WRITE_TIMEOUT_MS). */
  writeTimeoutMs?: number;
  /** Keyed links and this process's anchor (audit-checkpoints.ts); absent only in tests. */
  chain?: AuditChainState;
}): AuditLog {
  const failClosed = deps.failClosed ?? true;
  const { clock, logger, metrics } = deps;
  const store = createAuditStore(deps.db, deps.chain?.keying);
  const maxQueue = deps.maxQueue ?? DEFAULT_MAX_QUEUE;
  const writeTimeoutMs = deps.writeTimeoutMs ?? DEFAULT_AUDIT_WRITE_TIMEOUT_MS;

  let queue: Queued[] = [];
  let scheduled = false;
  let writing = false;
  let closed = false;
  // Events taken in vs. settled (written or failed): flush() waits for settled to catch up.
  let enqueued = 0;
  let settled = 0;
  let flushWaiters: { target: number; resolve: () => void }[] = [];
  let droppedSinceWarn = 0;
  let lastDropWarn = Number.NEGATIVE_INFINITY;
  // The batch being written, and since when. A write that stalls (a lock held by a stopped
  // replica, a connection that went silent) neither errors nor ends; these make it visible.
  let inFlight: Queued[] = [];
  let writeStartedAt = 0;
  // False from a failed (or timed-out) write until a batch commits: tokens then wait for their record.
  let healthy = true;
  metrics?.observeAuditBacklog(() => {
    const oldest = inFlight[0] ?? queue[0];
    return {
      events: inFlight.length + queue.length,
      oldestMs: oldest ? Math.max(0, clock.now() - oldest.time) : 0,
    };
  });

  function schedule(): void {
    if (scheduled || writing) return;
    scheduled = true;
    setImmediate(drain);
  }

  function drain(): void {
    scheduled = false;
    if (queue.length === 0) return;
    const batch = queue;
    queue = [];
    writing = true;
    inFlight = batch;
    writeStartedAt = clock.now();
    for (const q of batch) q.started = true;
    // A write that has not committed by the deadline has failed, as far as anyone waiting is
    // concerned: fail-closed requests get 503 instead of waiting on it, or going out unaudited
    // behind it. The write itself ends on the store's own timeouts; one writer at a time still.
    const deadline = setTimeout(() => {
      fail(batch, new Error(`audit write not committed within ${writeTimeoutMs} ms`));
    }, writeTimeoutMs);
    // writeBatch settles every waiter itself; the catch only keeps a bug there from becoming an
    // unhandled rejection that would take the process down.
    void writeBatch(batch)
      .catch(() => {})
      .finally(() => {
        clearTimeout(deadline);
        writing = false;
        inFlight = [];
        settled += batch.length;
        flushWaiters = flushWaiters.filter((w) => {
          if (w.target > settled) return true;
          w.resolve();
          return false;
        });
        if (queue.length > 0) schedule();
      });
  }

  async function writeBatch(batch: Queued[]): Promise<void> {
    const rows: AuditRowInput[] = [];
    const accepted: Queued[] = [];
    for (const q of batch) {
      if (q.cancelled) continue;
      try {
        rows.push(toRow(q.input, q.time));
        accepted.push(q);
      } catch (err) {
        // One unserializable event must not sink the batch it happens to share.
        fail([q], err);
      }
    }
    try {
      // Hot-path records (denials, upstream tokens; no one awaits them) commit without waiting
      // for the disk: on SQLite an fsync would stall the event loop, and every request with it.
      // They survive a process crash; a power cut may take the last moments. A batch that
      // someone awaits (record()) is durable before it resolves.
      const durable = accepted.some((q) => q.resolve !== undefined);
      const written = await store.append(rows, { durable });
      const head = written[written.length - 1];
      if (head) deps.chain?.witness({ seq: head.seq, head: head.hash });
    } catch (err) {
      fail(accepted, err);
      return;
    }
    healthy = true;
    const late = accepted.filter((q) => q.failed).length;
    if (late > 0) {
      metrics?.auditLate.inc(late);
      logger.warn({ events: late }, "audit events committed after their write had been counted as failed");
    }
    for (const q of accepted) if (!q.failed) settle(q).resolve?.();
  }

  /** Stops an entry's deadline; returns the entry for chaining. */
  function settle(q: Queued): Queued {
    clearTimeout(q.timer);
    return q;
  }

  /** Fails entries not failed yet: counted once, waiters rejected, the log marked failing. */
  function fail(entries: Queued[], err: unknown): void {
    const fresh = entries.filter((q) => !q.failed && !q.cancelled);
    if (fresh.length === 0) return;
    healthy = false;
    for (const q of fresh) q.failed = true;
    metrics?.auditFailures.inc(fresh.length);
    // Message and code only: a driver error object can carry row values.
    const e = err as { message?: string; code?: string };
    logger.error({ err: e?.message, code: e?.code, events: fresh.length }, "audit events could not be written");
    for (const q of fresh) settle(q).reject?.(new AuditWriteError("audit record could not be written", err));
  }

  /**
   * Queues an event someone waits for, with its own deadline: one still queued then is dropped
   * (its waiter was told it failed); one being written counts as failed, and as late if it commits.
   */
  function awaited(e: AuditEventInput): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const q: Queued = { input: e, time: clock.now(), resolve, reject };
      q.timer = setTimeout(() => {
        fail([q], new Error(`audit record not committed within ${writeTimeoutMs} ms`));
        if (!q.started) q.cancelled = true;
      }, writeTimeoutMs);
      enqueue(q);
    });
  }

  /** The log keeps up: no failure since the last commit, and no write stuck in flight. */
  function keepingUp(): boolean {
    return healthy && !(writing && clock.now() - writeStartedAt > LAG_MS);
  }

  /** Counts a refused event; the warning is rate-limited because a full queue refuses thousands. */
  function refuse(reason: "queue_full" | "closed"): void {
    metrics?.auditFailures.inc();
    droppedSinceWarn++;
    const now = clock.now();
    if (now - lastDropWarn < DROP_WARN_INTERVAL_MS) return;
    logger.warn({ dropped: droppedSinceWarn, reason, max_queue: maxQueue }, "audit events refused");
    lastDropWarn = now;
    droppedSinceWarn = 0;
  }

  function flush(): Promise<void> {
    if (settled >= enqueued) return Promise.resolve();
    const target = enqueued;
    return new Promise<void>((resolve) => {
      flushWaiters.push({ target, resolve });
    });
  }

  function enqueue(q: Queued): void {
    queue.push(q);
    enqueued++;
    schedule();
  }

  return {
    record(e) {
      if (closed || queue.length >= maxQueue) {
        refuse(closed ? "closed" : "queue_full");
        return Promise.reject(new AuditWriteError(closed ? "audit log is closed" : "audit queue is full"));
      }
      return awaited(e);
    },

    async recordIn(tx, e) {
      if (!failClosed) {
        this.recordLater(e);
        return;
      }
      try {
        // Joins the caller's transaction (nested transactions join the outer one).
        await createAuditStore(tx, deps.chain?.keying).append([toRow(e, clock.now())]);
      } catch (err) {
        healthy = false;
        metrics?.auditFailures.inc();
        throw new AuditWriteError("audit record could not be written", err);
      }
    },

    /**
     * While the log keeps up, a token is handed out without waiting for its record's commit (that
     * wait would be most of a cache miss's latency); the record goes into the next batch. Failing
     * closed means: once a write has failed or timed out, or one has been in flight for LAG_MS,
     * a token waits for its own record's commit (at most the write deadline) and is refused
     * (AuditWriteError, 503) if it does not commit; a full queue refuses at once. So an outage,
     * or a stall, lets through at most the tokens issued in the LAG_MS before it showed, and all
     * of them are counted in keyward_audit_failures_total if their records are lost.
     */
    async recordToken(e) {
      if (!failClosed) {
        this.recordLater(e);
        return;
      }
      if (closed || queue.length >= maxQueue) {
        refuse(closed ? "closed" : "queue_full");
        throw new AuditWriteError("the audit log is failing; token not issued");
      }
      if (keepingUp()) {
        this.recordLater(e);
        return;
      }
      try {
        await awaited(e);
      } catch (err) {
        throw new AuditWriteError("the audit log is failing; token not issued", err);
      }
    },

    recordLater(e) {
      if (closed || queue.length >= maxQueue) {
        refuse(closed ? "closed" : "queue_full");
        return;
      }
      enqueue({ input: e, time: clock.now() });
    },

    flush,

    async list(q) {
      const limit = Math.min(Math.max(Math.trunc(q.limit) || 1, 1), MAX_PAGE);
      const filter: AuditListFilter = { limit: limit + 1 };
      if (q.since !== undefined) filter.since = q.since;
      if (q.until !== undefined) filter.until = q.until;
      if (q.action !== undefined) filter.action = q.action;
      if (q.principal !== undefined) filter.principal = q.principal;
      if (q.cursor !== undefined) filter.beforeSeq = decodeCursor(q.cursor);
      const rows = await store.list(filter);
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        events: page.map(toEvent),
        next_cursor: rows.length > limit && last ? encodeCursor(last.seq) : null,
      };
    },

    verify(checkpoint) {
      return verifyAuditChain({ page: store.page, chain: deps.chain, checkpoint });
    },

    async close() {
      closed = true;
      await flush();
    },
  };
}
