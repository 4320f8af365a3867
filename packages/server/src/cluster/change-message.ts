import { CHANGE_KINDS, type Change, type ChangeKind } from "./change-feed.js";

/**
 * How a replica tells the others about changes: a pub/sub channel (Redis, or PostgreSQL
 * LISTEN/NOTIFY). Delivery is best effort; the change log is the truth.
 */
export interface ChangeTransport {
  readonly name: "redis" | "postgres";
  /** Sends one message; rejects when it could not be handed to the broker. */
  send(payload: string): Promise<void>;
  /**
   * Starts listening. `onMessage` gets every payload on the channel (this replica's own included);
   * `onSubscribed` runs after every (re)subscription, when messages may have been missed.
   */
  start(onMessage: (payload: string) => void, onSubscribed: () => void): void;
  /** Resolves once it can both send and receive for the first time (never rejects). */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** NOTIFY payloads must stay under 8000 bytes; Redis has no such limit, but one rule is simpler. */
const MAX_PAYLOAD = 7000;

/** A change as sent: with its seq in the change log when the sender knows it. */
export interface SentChange extends Change {
  seq?: number;
}

type Item = [ChangeKind, string] | [ChangeKind, string, number];

interface Message {
  /** The sending replica, so it can skip its own messages (it ran its handlers already). */
  o: string;
  c: Item[];
}

/** Splits changes into messages that each fit in one NOTIFY payload. */
export function encodeChanges(origin: string, changes: readonly SentChange[]): string[] {
  const out: string[] = [];
  let batch: Item[] = [];
  let size = 0;
  for (const c of changes) {
    const item: Item = c.seq === undefined ? [c.kind, c.ref] : [c.kind, c.ref, c.seq];
    const itemSize = JSON.stringify(item).length + 1;
    if (batch.length > 0 && size + itemSize > MAX_PAYLOAD) {
      out.push(JSON.stringify({ o: origin, c: batch } satisfies Message));
      batch = [];
      size = 0;
    }
    batch.push(item);
    size += itemSize;
  }
  if (batch.length > 0) out.push(JSON.stringify({ o: origin, c: batch } satisfies Message));
  return out;
}

/**
 * Parses a message; anything malformed gives undefined. Whoever can publish on the channel can at
 * most make replicas drop cache entries (handlers only invalidate), never grant anything.
 */
export function decodeChanges(payload: string): { origin: string; changes: SentChange[] } | undefined {
  let msg: unknown;
  try {
    msg = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof msg !== "object" || msg === null) return undefined;
  const { o, c } = msg as Partial<Message>;
  if (typeof o !== "string" || !Array.isArray(c)) return undefined;
  const changes: SentChange[] = [];
  for (const item of c) {
    if (!Array.isArray(item) || item.length < 2 || item.length > 3) return undefined;
    const [kind, ref, seq] = item as unknown[];
    if (typeof ref !== "string" || !CHANGE_KINDS.has(kind as ChangeKind)) return undefined;
    if (seq !== undefined && !Number.isSafeInteger(seq)) return undefined;
    changes.push(
      seq === undefined ? { kind: kind as ChangeKind, ref } : { kind: kind as ChangeKind, ref, seq: seq as number },
    );
  }
  return { origin: o, changes };
}

/**
 * An error's code and message with any URL credentials removed: connection errors can quote the
 * address they failed on, and a Redis or PostgreSQL URL may carry a password.
 */
export function describeError(err: unknown): { code?: string; reason: string } {
  const e = err as { code?: unknown; message?: unknown } | null;
  const reason = String(e?.message ?? err)
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^@\s/]*@/gi, "$1[redacted]@")
    .slice(0, 300);
  return typeof e?.code === "string" ? { code: e.code, reason } : { reason };
}
