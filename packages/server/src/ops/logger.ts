import pino from "pino";
import { formatPretty } from "./log-pretty.js";

export type Logger = pino.Logger;

/** `json`: one JSON object a line (for collectors); `pretty`: one readable line (for a terminal). */
export type LogFormat = "json" | "pretty";

/**
 * Redaction is a second line of defence: code logs key ids and prefixes, never values, but any
 * field with a secret-looking name is censored anyway, at the top level, one level down and in
 * a request's headers wherever they are logged.
 */
const SECRET_FIELDS = [
  "secret",
  "token",
  "value",
  "password",
  "api_key",
  "apiKey",
  "authorization",
  "cookie",
  "client_secret",
  "refresh_token",
  "access_token",
  "id_token",
  "subject_token",
  "actor_token",
  "user_token",
  "admin_token",
  "metrics_token",
  "master_key",
];
const SECRET_HEADERS = ["authorization", "proxy-authorization", "x-api-key", "cookie", "set-cookie"];

export const REDACT_PATHS = [
  ...SECRET_FIELDS.flatMap((f) => [f, `*.${f}`]),
  ...SECRET_HEADERS.flatMap((h) => [`headers["${h}"]`, `*.headers["${h}"]`]),
];

export interface LoggerOptions {
  level?: string;
  format?: LogFormat;
  /** Where lines go (tests); default stderr, so stdout keeps only the CLI's own lines. */
  destination?: pino.DestinationStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const out = opts.destination ?? pino.destination({ dest: 2, sync: false });
  return pino(
    {
      level: opts.level ?? "info",
      base: { service: "keyward" },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      // "info", not 30: a reader (or a grep) should not need pino's number table.
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.format === "pretty" ? { write: (line: string) => out.write(formatPretty(line)) } : out,
  );
}

/**
 * `auto` is pretty when the logs' stream (stderr) is a terminal, JSON otherwise: a person at a
 * terminal reads lines, anything else (a pipe, a file, a container runtime) parses them.
 */
export function resolveLogFormat(setting: LogFormat | "auto", isTerminal: boolean): LogFormat {
  return setting === "auto" ? (isTerminal ? "pretty" : "json") : setting;
}

/** A logger that drops everything (unit tests). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
