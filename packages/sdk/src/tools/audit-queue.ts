import { isOutage } from "../client/credentials-api.js";
import { KeywardError } from "../errors.js";
import { AuditError, type AuditEvent } from "./errors.js";
import type { ToolsApi } from "./tools-api.js";

/** Retry delays of an audit record while Keyward is down or unwell (5xx); a 4xx is not retried. */
const RETRY_MS = [200, 1000];

/**
 * Tool-call records go out after the call returned, off its path (STYLE: audit writes stay off
 * the hot path), a few retries for an outage, and every failure reported: a call is never failed
 * by its audit, nor is a lost record silent.
 */
export class AuditQueue {
  readonly #api: ToolsApi;
  readonly #pending = new Set<Promise<void>>();
  #closing = false;

  constructor(api: ToolsApi) {
    this.#api = api;
  }

  send(event: AuditEvent, onError: (err: AuditError) => void): void {
    const p = this.#deliver(event)
      .catch((err: unknown) => {
        const cause = err instanceof KeywardError ? err : new KeywardError("audit_failed", "audit request failed");
        onError(new AuditError(event, cause));
      })
      .finally(() => this.#pending.delete(p));
    this.#pending.add(p);
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
  async flush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  /** No more retries; waits for what is in flight. */
  close(): Promise<void> {
    this.#closing = true;
    return this.flush();
  }
}
