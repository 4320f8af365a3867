import type { Clock } from "../../src/client/options.js";

interface Timer {
  at: number;
  fn: () => void;
  delay: number;
}

/** A clock that moves only when the test says so; timers fire in order as it advances. */
export class ManualClock implements Clock {
  #now: number;
  #nextId = 1;
  readonly #timers = new Map<number, Timer>();
  /** Every delay ever set, in order. */
  readonly log: number[] = [];
  readonly #waiters: { delay: number; resolve: () => void }[] = [];

  constructor(start = Date.now()) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#nextId++;
    const delay = Math.max(0, ms);
    this.#timers.set(id, { at: this.#now + delay, fn, delay });
    this.log.push(delay);
    for (const w of [...this.#waiters]) {
      if (w.delay !== delay) continue;
      this.#waiters.splice(this.#waiters.indexOf(w), 1);
      w.resolve();
    }
    return id;
  }

  /** Resolves when a timer of exactly `delay` ms is set (from now on). */
  waitForTimer(delay: number): Promise<void> {
    return new Promise((resolve) => this.#waiters.push({ delay, resolve }));
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Timers waiting, by the delay they were set with (ascending by due time). */
  pending(): number[] {
    return [...this.#timers.values()].sort((a, b) => a.at - b.at).map((t) => t.delay);
  }

  /** Moves time forward by `ms`, firing every timer due on the way. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let first: [number, Timer] | undefined;
      for (const entry of this.#timers)
        if (entry[1].at <= target && (!first || entry[1].at < first[1].at)) first = entry;
      if (!first) break;
      this.#timers.delete(first[0]);
      this.#now = first[1].at;
      first[1].fn();
    }
    this.#now = target;
  }

  /** Jumps to the earliest timer and fires it; returns its delay, or undefined if none. */
  fireNext(): number | undefined {
    let first: Timer | undefined;
    for (const t of this.#timers.values()) if (!first || t.at < first.at) first = t;
    if (!first) return undefined;
    this.advance(first.at - this.#now);
    return first.delay;
  }
}
