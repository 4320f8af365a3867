import type { Clock } from "./options.js";

/** Even with maxStale of a day, look at the wall clock each minute: timers stand still while a host sleeps. */
const RECHECK_MS = 60_000;

/**
 * Tracks the last successful contact with the server and flips to stale `maxStale` ms later.
 * A timer does the flipping so that `get` reads one field instead of the clock: `Date.now()` alone
 * costs more than the whole lookup.
 */
export class Staleness {
  #lastContact = 0;
  #stale = false;
  #timer: unknown;
  #stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly maxStale: number,
    private readonly onChange: (stale: boolean) => void,
  ) {}

  get lastContact(): number {
    return this.#lastContact;
  }

  /** True when `at` (epoch ms) is already older than maxStale. */
  tooOld(at: number): boolean {
    return at + this.maxStale <= this.clock.now();
  }

  start(lastContact: number): void {
    this.#lastContact = lastContact;
    this.#check();
  }

  contact(): void {
    this.#lastContact = this.clock.now();
    if (!this.#stale) return;
    this.#stale = false;
    this.onChange(false);
    this.#check();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #check = (): void => {
    this.#timer = undefined;
    if (this.#stopped) return;
    const left = this.#lastContact + this.maxStale - this.clock.now();
    if (left > 0) {
      this.#timer = this.clock.setTimeout(this.#check, Math.min(left, RECHECK_MS));
      return;
    }
    // No timer while stale: the next contact re-arms it.
    this.#stale = true;
    this.onChange(true);
  };
}
