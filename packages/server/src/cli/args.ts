import { type ParseArgsConfig, parseArgs } from "node:util";

/** A mistake in how the CLI was called: printed as one line plus a usage hint, exit 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export type Options = NonNullable<ParseArgsConfig["options"]>;

/** Flags every command accepts, wherever they appear on the line. */
export const GLOBAL_OPTIONS = {
  url: { type: "string" },
  token: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies Options;

export type Values = Record<string, string | boolean | undefined>;

/**
 * Index of the first positional in `argv`, skipping flags and the values of `options` that take
 * one. Used to find the command word before we know which flags that command accepts, so that
 * `keyward --url X agents list` works as well as `keyward agents list --url X`.
 */
export function firstPositional(argv: readonly string[], options: Options): number {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") return i + 1 < argv.length ? i + 1 : -1;
    if (!arg.startsWith("-") || arg === "-") return i;
    if (arg.includes("=")) continue;
    const name = arg.startsWith("--") ? arg.slice(2) : shortToLong(arg.slice(1), options);
    if (name !== undefined && options[name]?.type === "string") i++;
  }
  return -1;
}

function shortToLong(short: string, options: Options): string | undefined {
  return Object.keys(options).find((name) => options[name]?.short === short);
}

/** Strict parse: an unknown flag or a missing flag value is a UsageError with a one-line message. */
export function parseFlags(argv: string[], options: Options): { values: Values; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: values as Values, positionals };
  } catch (err) {
    throw new UsageError(describeParseError(err));
  }
}

function describeParseError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const message = e.message ?? String(err);
  const quoted = /'([^']+)'/.exec(message)?.[1];
  if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && quoted) return `unknown flag ${quoted}`;
  // node's messages run over several lines; the first one says what is wrong.
  return message.split("\n")[0]!;
}

/** Checks the positional count against the names a command expects, e.g. ["NAME"]. */
export function expectPositionals(positionals: string[], names: readonly string[]): string[] {
  if (positionals.length < names.length) throw new UsageError(`missing ${names[positionals.length]}`);
  if (positionals.length > names.length) throw new UsageError(`unexpected argument '${positionals[names.length]}'`);
  return positionals;
}

export function stringFlag(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

export function requiredFlag(values: Values, name: string): string {
  const v = stringFlag(values, name);
  if (v === undefined) throw new UsageError(`--${name} is required`);
  return v;
}

/** "a, b,,c" → ["a", "b", "c"]: forgiving about spaces and stray commas. */
export function parseList(raw: string): string[] {
  return raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

export function parsePositiveInt(raw: string, flag: string): number {
  if (!/^\d+$/.test(raw.trim())) throw new UsageError(`--${flag} must be a whole number, got '${raw}'`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${flag} must be at least 1, got '${raw}'`);
  return n;
}

/** Like parsePositiveInt but 0 is allowed (a rotation grace of 0 means "now"). */
export function parseNonNegativeInt(raw: string, flag: string): number {
  return raw.trim() === "0" ? 0 : parsePositiveInt(raw, flag);
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/**
 * `--rate-limit LIMIT/WINDOW`, WINDOW being seconds with an optional count and unit:
 * "100/60s", "100/60", "100/s", "5/1m", "1000/h". Returns the API's `{limit, window_s}`.
 */
export function parseRateLimit(raw: string): { limit: number; window_s: number } {
  const m = /^\s*(\d+)\s*\/\s*(\d+)?\s*([smhd])?\s*$/.exec(raw);
  const count = m?.[2] ?? (m?.[3] ? "1" : undefined);
  if (!m || count === undefined) {
    throw new UsageError(`--rate-limit must look like 100/60s (requests per window), got '${raw}'`);
  }
  const limit = Number(m[1]);
  const window_s = Number(count) * UNIT_SECONDS[m[3] ?? "s"]!;
  if (limit < 1 || window_s < 1)
    throw new UsageError(`--rate-limit needs a limit and window of at least 1, got '${raw}'`);
  return { limit, window_s };
}

const QUOTA_PERIODS = ["day", "month", "total"] as const;
export type QuotaPeriod = (typeof QUOTA_PERIODS)[number];

/** `--quota LIMIT/PERIOD`, e.g. "10000/day"; PERIOD is day, month or total. */
export function parseQuota(raw: string): { limit: number; period: QuotaPeriod } {
  const m = /^\s*(\d+)\s*\/\s*([a-z]+)\s*$/i.exec(raw);
  const period = QUOTA_PERIODS.find((p) => p === m?.[2]?.toLowerCase());
  if (!m || period === undefined) {
    throw new UsageError(`--quota must look like 10000/day (period: day, month or total), got '${raw}'`);
  }
  const limit = Number(m[1]);
  if (limit < 1) throw new UsageError(`--quota limit must be at least 1, got '${raw}'`);
  return { limit, period };
}

/** `--metadata` takes a JSON object; anything else is caught here rather than by a 400. */
export function parseJsonObject(raw: string, flag: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new UsageError(`--${flag} must be a JSON object, e.g. '{"team":"ml"}'`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new UsageError(`--${flag} must be a JSON object, e.g. '{"team":"ml"}'`);
  }
  return parsed as Record<string, unknown>;
}
