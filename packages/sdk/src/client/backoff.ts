/**
 * Exponential backoff with full jitter: the n-th consecutive failure waits a uniform random time
 * in [0, min(cap, base · 2^n)). Full jitter (rather than a fixed or "equal" jitter) spreads a
 * thousand clients that lost the same server over the whole window, so they do not return in step.
 */
export class Backoff {
  #failures = 0;

  constructor(
    private readonly baseMs: number,
    private readonly capMs: number,
    private readonly random: () => number,
  ) {}

  /** Consecutive failures since the last success. */
  get failures(): number {
    return this.#failures;
  }

  /** Records a failure and returns how long to wait before the next attempt. */
  fail(): number {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.#failures, 30));
    this.#failures++;
    return Math.floor(this.random() * ceiling);
  }

  succeed(): void {
    this.#failures = 0;
  }
}
