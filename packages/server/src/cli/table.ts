/** Shown for a missing value, so an empty column still reads as "nothing here". */
export const NONE = "-";

/**
 * Rows under a header, columns separated by two spaces and padded to the widest cell.
 * The last column is not padded, so lines carry no trailing spaces.
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [headers, ...rows].map((row) => row.map(clean));
  const widths = headers.map((_, i) => Math.max(...all.map((row) => (row[i] ?? "").length)));
  return lines(all.map((row) => alignRow(row, widths)));
}

/** One resource as `label  value` lines, labels aligned: the view for `get`, `create`, `update`. */
export function formatRecord(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(0, ...pairs.map(([label]) => label.length));
  return lines(pairs.map(([label, value]) => `${label.padEnd(width)}  ${clean(value)}`.trimEnd()));
}

/** Output blocks always end with a newline, so callers can concatenate them. */
function lines(rows: string[]): string {
  return rows.map((row) => `${row}\n`).join("");
}

function alignRow(row: readonly string[], widths: readonly number[]): string {
  return row
    .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
    .join("  ")
    .trimEnd();
}

/**
 * Values come from the server and may hold anything a user once typed. Control characters are
 * replaced so a newline cannot break the columns and an escape sequence cannot drive the terminal.
 */
function clean(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  return value.replace(/[\u0000-\u001f\u007f-\u009f]/g, " ");
}

/** RFC 3339 → "2025-01-02 15:04" in UTC: minutes are enough to read, and UTC matches the server. */
export function shortTime(value: string | null | undefined): string {
  if (value === null || value === undefined || value === "") return NONE;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) return value;
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ");
}

/** Cuts long free text (descriptions, metadata) to keep a list on one screen width. */
export function truncate(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, Math.max(0, max - 1))}…`;
}

export function orNone(value: string | null | undefined): string {
  return value === null || value === undefined || value === "" ? NONE : value;
}
