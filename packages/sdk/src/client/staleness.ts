import type { Clock } from "./options.js";

/** Even with maxStale of a day, look at the wall clock each minute: timers stand still while a host sleeps. */
const RECHECK_MS = 60_000;

/**
 * Points of a silence, as fractions of maxStale, at which the client asks the server itself. Two
 * questions: one failing for a passing reason (a reset connection) is not enough to go stale.
 */
const ASK_AT = [0.5, 0.75] as const;

/**
 * Tracks the last successful contact with the server and flips to stale `maxStale` ms later.
 * A timer does the flipping so that `get` reads one field instead of the clock: `Date.now()` alone
 * costs more than the whole lookup.
 *
 * Stale must mean "unreachable that long", not "quiet that long": a connected stream carries
 * only a heartbeat every 15 s, and polling runs every `pollIntervalMs`, both of which may be
 * longer than a short maxStale. So when nothing has been heard for half of maxStale (and again at
 * three quarters) `confirm` asks the server (a conditional request, a 304 when nothing changed);
 * its answer is a contact. With the defaults (24 h) a healthy client never gets there.
 */
export class Staleness {
  #lastContact = 0;
  #stale = false;
  #timer: unknown;
  #stopped = false;
  /** Questions asked since the last contact (an index into ASK_AT). */
  #asked = 0;

  constructor(
    private readonly clock: Clock,
    private readonly maxStale: number,
    private readonly onChange: (stale: boolean) => void,
    /** Asks the server for a sign of life; a success must end in `contact()`. Failures are not reported here. */
    private readonly confirm?: () => void,
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
    this.#asked = 0;
    this.#check();
  }

  contact(): void {
    this.#lastContact = this.clock.now();
    this.#asked = 0;
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
    const now = this.clock.now();
    const left = this.#lastContact + this.maxStale - now;
    if (left <= 0) {
      // No timer while stale: the next contact re-arms it.
      this.#stale = true;
      this.onChange(true);
      return;
    }
    let wait = Math.min(left, RECHECK_MS);
    if (this.confirm !== undefined) {
      // One question for every point passed (after a sleep, several at once make one).
      let due = this.#asked;
      while (due < ASK_AT.length && this.#lastContact + this.maxStale * ASK_AT[due]! <= now) due++;
      if (due > this.#asked) {
        this.#asked = due;
        this.confirm();
      }
      const next = ASK_AT[this.#asked];
      if (next !== undefined) wait = Math.min(wait, this.#lastContact + this.maxStale * next - now);
    }
    this.#timer = this.clock.setTimeout(this.#check, wait);
  };
}
