// Numeric settings of the benchmarks, from the environment.

/** A positive number from env `name`, or `fallback` when unset; anything else stops the run. */
export function envNumber(name, fallback, { integer = false } = {}) {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`${name} must be a positive ${integer ? "integer" : "number"}, got "${v}"`);
  }
  return n;
}
