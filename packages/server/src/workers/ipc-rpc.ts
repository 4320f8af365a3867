/**
 * Requests and answers over a node:cluster IPC channel, both ways (primary ↔ one worker).
 *
 * Every message Keyward sends carries `kw: 1`, so messages of node's own cluster protocol (or of
 * anything else using the channel) are ignored. A request is `{kw, id, m, b}` (method, body); its
 * answer `{kw, id, r}` or `{kw, id, e}` (an error message). A call that gets no answer within its
 * timeout, or whose channel closes first, rejects: callers treat that as "the other side is gone".
 */

/** The side of a channel this module needs: `process` in a worker, a `cluster.Worker` in the primary. */
export interface IpcEndpoint {
  send(message: unknown, callback?: (err: Error | null) => void): boolean;
  on(event: "message", listener: (message: unknown) => void): unknown;
  on(event: "disconnect", listener: () => void): unknown;
}

export type RpcHandler = (body: unknown) => unknown;

export interface Rpc {
  /** Sends `method` with `body`; resolves with the answer, rejects on an error answer, a timeout or a closed channel. */
  call(method: string, body: unknown, timeoutMs: number): Promise<unknown>;
  /** Sends without waiting for an answer (false when the channel is closed). */
  notify(method: string, body: unknown): boolean;
  /** Rejects every pending call (the channel is gone). */
  close(reason: string): void;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** Pending calls per channel: a side that stops answering cannot make the other keep unbounded state. */
export const MAX_PENDING_CALLS = 10_000;

export class RpcError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RpcError";
  }
}

export function createRpc(endpoint: IpcEndpoint, handlers: Readonly<Record<string, RpcHandler>>): Rpc {
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let closedReason: string | undefined;

  function answer(id: number, result: { r: unknown } | { e: string }): void {
    try {
      endpoint.send({ kw: 1, id, ...result });
    } catch {
      // The channel closed while the handler ran: the caller's own timeout or close covers it.
    }
  }

  endpoint.on("message", (raw) => {
    if (typeof raw !== "object" || raw === null || (raw as { kw?: unknown }).kw !== 1) return;
    const msg = raw as { id?: unknown; m?: unknown; b?: unknown; r?: unknown; e?: unknown };
    if (typeof msg.id !== "number") return;
    if (typeof msg.m === "string") {
      // id 0: a notification, nobody waits for its answer.
      const id = msg.id;
      const handler = Object.hasOwn(handlers, msg.m) ? handlers[msg.m] : undefined;
      if (!handler) return id === 0 ? undefined : answer(id, { e: `unknown method ${msg.m.slice(0, 40)}` });
      Promise.resolve()
        .then(() => handler(msg.b))
        .then(
          (r) => id !== 0 && answer(id, { r: r ?? null }),
          (err: unknown) => id !== 0 && answer(id, { e: String((err as Error)?.message ?? err).slice(0, 300) }),
        );
      return;
    }
    const call = pending.get(msg.id);
    if (!call) return; // answered after its timeout
    pending.delete(msg.id);
    clearTimeout(call.timer);
    if (typeof msg.e === "string") call.reject(new RpcError(msg.e));
    else call.resolve(msg.r);
  });
  endpoint.on("disconnect", () => close("the IPC channel closed"));

  function close(reason: string): void {
    closedReason ??= reason;
    for (const [id, call] of pending) {
      pending.delete(id);
      clearTimeout(call.timer);
      call.reject(new RpcError(reason));
    }
  }

  return {
    call(method, body, timeoutMs) {
      if (closedReason !== undefined) return Promise.reject(new RpcError(closedReason));
      if (pending.size >= MAX_PENDING_CALLS) return Promise.reject(new RpcError("too many pending IPC calls"));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new RpcError(`no answer to ${method} within ${timeoutMs} ms`));
        }, timeoutMs);
        timer.unref();
        pending.set(id, { resolve, reject, timer });
        try {
          endpoint.send({ kw: 1, id, m: method, b: body }, (err) => {
            if (err) close(`cannot send over IPC: ${err.message}`);
          });
        } catch (err) {
          close(`cannot send over IPC: ${(err as Error).message}`);
        }
      });
    },
    notify(method, body) {
      if (closedReason !== undefined) return false;
      try {
        return endpoint.send({ kw: 1, id: 0, m: method, b: body });
      } catch {
        return false;
      }
    },
    close,
  };
}
