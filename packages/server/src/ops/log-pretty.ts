/**
 * Pino's JSON line as one line a person reads: `12:04:05.123 INFO  keyward started url=http://…`.
 * Small on purpose (pino-pretty brings a dozen packages for colours and options we do not need);
 * it only runs when the logs go to a terminal or `log_format: pretty` asks for it. It formats the
 * line pino wrote, so redaction has already happened.
 */
const HIDDEN = new Set(["level", "time", "msg", "service", "pid", "hostname"]);
const SAFE_BARE = /^[^\s"=\p{Cc}]+$/u;

function showValue(v: unknown): string {
  if (typeof v === "string") return SAFE_BARE.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

export function formatPretty(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith("\n") ? line : `${line}\n`;
  }
  const time = typeof entry.time === "string" ? entry.time.slice(11, 23) : "";
  const level = String(entry.level ?? "").toUpperCase();
  // JSON.stringify: a message with a line break must not forge a second log line.
  const msg = typeof entry.msg === "string" ? JSON.stringify(entry.msg).slice(1, -1) : "";
  let text = `${time} ${level.padEnd(5)} ${msg}`;
  for (const [k, v] of Object.entries(entry)) {
    if (!HIDDEN.has(k)) text += ` ${k}=${showValue(v)}`;
  }
  return `${text}\n`;
}
