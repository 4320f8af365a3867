import pino from "pino";

export type Logger = pino.Logger;

/**
 * Structured JSON logs. Redaction is a second line of defence: code logs key ids and prefixes,
 * never values, but any field with a secret-looking name is censored anyway.
 */
export const REDACT_PATHS = [
  "secret",
  "*.secret",
  "token",
  "*.token",
  "value",
  "*.value",
  "password",
  "*.password",
  "api_key",
  "*.api_key",
  "authorization",
  "*.authorization",
  "*.headers.authorization",
  "*.headers['x-api-key']",
  "client_secret",
  "*.client_secret",
  "refresh_token",
  "*.refresh_token",
  "access_token",
  "*.access_token",
  "master_key",
  "*.master_key",
];

export function createLogger(opts: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? "info",
      base: { service: "keyward" },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination ?? pino.destination({ dest: 2, sync: false }),
  );
}

/** A logger that drops everything (unit tests). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
