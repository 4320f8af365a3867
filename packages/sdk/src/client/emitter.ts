import type { KeywardError } from "../errors.js";

/** What a {@link Keyward} client reports. */
export interface KeywardEvents {
  /** A credential got a new value (rotation, update, rollback, a token provider's refresh). */
  change: { name: string; version: number };
  /** A credential was deleted or is no longer granted: `get(name)` now throws. */
  removed: { name: string };
  /**
   * A background failure: the server unreachable, a refused key, the values turning stale, a
   * cache write failing. The client keeps retrying; this is for logs and alerts.
   */
  error: KeywardError;
}

export type Listener<E extends keyof KeywardEvents> = (payload: KeywardEvents[E]) => void;

/**
 * A minimal typed emitter. Unlike node:events, an `error` without listeners is not thrown (the
 * client's background work must not crash the process), and a listener that throws neither stops
 * the client nor the other listeners: its exception surfaces as an uncaught exception, as it would
 * from any callback.
 */
export class Emitter {
  readonly #listeners: { [E in keyof KeywardEvents]: Listener<E>[] } = { change: [], removed: [], error: [] };

  on<E extends keyof KeywardEvents>(event: E, listener: Listener<E>): void {
    this.#list(event).push(listener);
  }

  off<E extends keyof KeywardEvents>(event: E, listener: Listener<E>): void {
    const list = this.#list(event);
    const i = list.lastIndexOf(listener);
    if (i !== -1) list.splice(i, 1);
  }

  emit<E extends keyof KeywardEvents>(event: E, payload: KeywardEvents[E]): void {
    for (const listener of [...this.#list(event)]) {
      try {
        listener(payload);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  clear(): void {
    for (const list of Object.values(this.#listeners)) list.length = 0;
  }

  #list<E extends keyof KeywardEvents>(event: E): Listener<E>[] {
    if (!Object.hasOwn(this.#listeners, event)) throw new TypeError(`unknown event "${String(event)}"`);
    return this.#listeners[event] as Listener<E>[];
  }
}
