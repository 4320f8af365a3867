import { KeywardError } from "../errors.js";
import { isOutage } from "../http/http-errors.js";
import { AuditError, type AuditEvent } from "./errors.js";
import type { ToolsApi } from "./tools-api.js";

/** Retry delays of an audit record while Keyward is down or unwell (5xx); a 4xx is not retried. */
const RETRY_MS = [200, 1000];

/**
 * Bounds, so a Keyward that is down (or does not answer: every record then takes up to
 * 3 × requestTimeoutMs) costs a busy agent neither sockets nor memory without end: a few requests
 * at a time, a backlog of small records behind them, and past the backlog a record is dropped at
 * once and reported like any other lost record (`audit_dropped`, with the count so far).
 */
export interface AuditQueueLimits {
  /** Requests in flight (or waiting to retry) at once. */
  inFlight: number;
  /** Records waiting behind them. */
  backlog: number;
}
export const AUDIT_QUEUE_LIMITS: AuditQueueLimits = { inFlight: 32, backlog: 10_000 };

interface Item {
  event: AuditEvent;
  onError: (err: AuditError) => void;
}

/**
 * Tool-call records go out after the call returned, off its path (STYLE: audit writes stay off
 * the hot path), a few retries for an outage, and every failure reported: a call is never failed
 * by its audit, nor is a lost record silent.
 */
export class AuditQueue {
  readonly #api: ToolsApi;
  readonly #limits: AuditQueueLimits;
  readonly #backlog: Item[] = [];
  readonly #idle: Array<() => void> = [];
  #inFlight = 0;
  #closing = false;
  #dropped = 0;

  constructor(api: ToolsApi, limits: AuditQueueLimits = AUDIT_QUEUE_LIMITS) {
    this.#api = api;
    this.#limits = limits;
  }

  /** Records dropped because the backlog was full. */
  get dropped(): number {
    return this.#dropped;
  }

  send(event: AuditEvent, onError: (err: AuditError) => void): void {
    if (this.#backlog.length >= this.#limits.backlog) {
      this.#dropped++;
      const cause = new KeywardError(
        "audit_dropped",
        `${this.#inFlight + this.#backlog.length} records are waiting for Keyward; ${this.#dropped} dropped so far`,
      );
      // Reported after the call returned, like every other audit failure.
      void Promise.resolve().then(() => onError(new AuditError(event, cause)));
      return;
    }
    this.#backlog.push({ event, onError });
    this.#pump();
  }

  #pump(): void {
    // Closing: what is left goes out at once, so close() waits one request at most, not the backlog.
    while (this.#backlog.length > 0 && (this.#closing || this.#inFlight < this.#limits.inFlight)) {
      const { event, onError } = this.#backlog.shift() as Item;
      this.#inFlight++;
      this.#deliver(event)
        .catch((err: unknown) => {
          const cause = err instanceof KeywardError ? err : new KeywardError("audit_failed", "audit request failed");
          onError(new AuditError(event, cause));
        })
        .finally(() => {
          this.#inFlight--;
          this.#pump();
          if (this.#inFlight === 0 && this.#backlog.length === 0) for (const done of this.#idle.splice(0)) done();
        });
    }
  }

  async #deliver(event: AuditEvent): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#api.audit(event);
        return;
      } catch (err) {
        const delay = RETRY_MS[attempt];
        if (delay === undefined || this.#closing || !isOutage(err)) throw err;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** Waits until every record sent so far was stored or reported. */
  flush(): Promise<void> {
    if (this.#inFlight === 0 && this.#backlog.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** No more retries, no more waiting in the backlog; waits for what is in flight. */
  close(): Promise<void> {
    this.#closing = true;
    this.#pump();
    return this.flush();
  }
}
