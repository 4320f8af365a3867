/** More would only add processes contending for the same cores; it also bounds what `--workers` costs. */
export const MAX_WORKERS = 256;

/**
 * `--workers`: a whole number from 1 to `MAX_WORKERS`; absent means `fallback`. Returns the count,
 * or the one line `serve` prints before stopping (the value quoted, cut short).
 */
export function parseWorkers(value: string | undefined, fallback: number): number | { error: string } {
  if (value === undefined) return Math.max(1, Math.min(MAX_WORKERS, Math.trunc(fallback)));
  if (!/^[1-9][0-9]{0,5}$/.test(value) || Number(value) > MAX_WORKERS) {
    return {
      error: `--workers must be a whole number from 1 to ${MAX_WORKERS} (got ${JSON.stringify(value.slice(0, 20))})`,
    };
  }
  return Number(value);
}
