import type { ServerResponse } from "node:http";

/** One progress update as relayed to the client (already redacted by the gateway). */
export interface ProgressUpdate {
  progress: number;
  total?: number;
  message?: string;
}

export interface ProgressStreamOptions {
  /** The client's own progressToken: every notification carries it, whatever the upstream used. */
  token: string | number;
  requestId: string;
  /** Sustained notifications per second, and how many may go at once before the rate applies. */
  ratePerSecond?: number;
  burst?: number;
  now?: () => number;
  /**
   * An SSE comment this often while the call runs (default 15 s): a proxy between the client and
   * Keyward may close a response that stays silent, and a long tool may report nothing for minutes.
   */
  heartbeatMs?: number;
}

export interface ProgressStream {
  progress(update: ProgressUpdate): void;
  /** Writes the last pending update (if any), then the JSON-RPC response, and ends the stream. */
  finish(response: unknown): void;
  /** True once the client went away before `finish`. */
  readonly gone: boolean;
}

/**
 * A POST answered as `text/event-stream` (MCP Streamable HTTP): progress notifications, then the
 * response, then the end. An upstream decides how often it reports, so what reaches the client is
 * bounded: a token bucket (10/s, bursts of 10 by default) and no write while the socket is
 * backpressured. Updates that cannot go yet are coalesced into one pending slot (the newest wins:
 * a progress value supersedes the one before), so a flood costs one object of memory, never a queue.
 */
export function openProgressStream(res: ServerResponse, opts: ProgressStreamOptions): ProgressStream {
  const now = opts.now ?? Date.now;
  const rate = opts.ratePerSecond ?? 10;
  const burst = opts.burst ?? 10;
  let tokens = burst;
  let refilledAt = now();
  let pending: ProgressUpdate | undefined;
  let timer: NodeJS.Timeout | undefined;
  let waitingForDrain = false;
  let done = false;
  let gone = false;

  res.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-store",
    "x-request-id": opts.requestId,
  });
  res.flushHeaders();
  const heartbeat = setInterval(() => {
    if (!done && !gone && !res.writableNeedDrain) res.write(": keep-alive\n\n");
  }, opts.heartbeatMs ?? 15_000);
  heartbeat.unref();
  res.on("close", () => {
    if (!res.writableFinished) gone = true;
    stopTimer();
    clearInterval(heartbeat);
  });

  const event = (message: unknown) => `event: message\ndata: ${JSON.stringify(message)}\n\n`;
  const notification = (u: ProgressUpdate) =>
    event({ jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: opts.token, ...u } });

  function stopTimer(): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
  }

  function flush(): void {
    if (pending === undefined || done || gone || waitingForDrain) return;
    if (res.writableNeedDrain) {
      waitingForDrain = true;
      res.once("drain", () => {
        waitingForDrain = false;
        flush();
      });
      return;
    }
    const t = now();
    tokens = Math.min(burst, tokens + ((t - refilledAt) * rate) / 1000);
    refilledAt = t;
    if (tokens < 1) {
      if (timer) return;
      timer = setTimeout(
        () => {
          timer = undefined;
          flush();
        },
        Math.ceil(((1 - tokens) * 1000) / rate),
      );
      return;
    }
    stopTimer();
    tokens -= 1;
    const u = pending;
    pending = undefined;
    res.write(notification(u));
  }

  return {
    progress(update) {
      if (done || gone) return;
      pending = update;
      flush();
    },
    finish(response) {
      if (done) return;
      done = true;
      stopTimer();
      clearInterval(heartbeat);
      if (gone || res.destroyed) return;
      // The newest update still owed goes before the result: the client's last progress is the
      // upstream's last. One event, whatever the backpressure: bounded.
      const last = pending;
      pending = undefined;
      res.end(last === undefined ? event(response) : notification(last) + event(response));
    },
    get gone() {
      return gone;
    },
  };
}
