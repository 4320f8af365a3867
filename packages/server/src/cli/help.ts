/**
 * Layout of every `--help`: two-column lists whose second column starts at one position, and
 * long lines wrapped at HELP_WIDTH under the column they belong to, so help reads the same in an
 * 80-to-100-column terminal whatever the command.
 */
export const HELP_WIDTH = 100;

/** A first cell longer than this puts its description on the next line, so one long flag does not push every row right. */
const MAX_FIRST_CELL = 28;

/** `parts` joined by spaces into lines of at most `width` characters (a longer part stays whole). */
function flow(parts: readonly string[], width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const part of parts) {
    if (line !== "" && line.length + 1 + part.length > width) {
      lines.push(line);
      line = part;
    } else line = line === "" ? part : `${line} ${part}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}

/** `text` cut at spaces into lines of at most `width` characters. */
export function wrap(text: string, width: number): string[] {
  return flow(text.split(/\s+/).filter(Boolean), width);
}

/**
 * Rows of [first cell, description]: every description starts at the same column (after the
 * longest first cell up to MAX_FIRST_CELL, plus two spaces) and wraps under it.
 */
export function columns(rows: readonly (readonly [string, string])[], indent = 2): string[] {
  const fitting = rows.map(([first]) => first.length).filter((n) => n <= MAX_FIRST_CELL);
  const column = indent + Math.max(0, ...fitting) + 2;
  const pad = " ".repeat(column);
  const out: string[] = [];
  for (const [first, description] of rows) {
    const lines = wrap(description, HELP_WIDTH - column);
    const head = `${" ".repeat(indent)}${first}`;
    if (head.length + 2 > column) out.push(head);
    else out.push(`${head.padEnd(column)}${lines.shift() ?? ""}`.trimEnd());
    for (const l of lines) out.push(`${pad}${l}`);
  }
  return out;
}

/** Splits a synopsis at spaces outside brackets: `[--a X | --b]` stays one piece where it fits. */
function synopsisParts(args: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let part = "";
  for (const ch of args) {
    if (ch === "[" || ch === "(") depth++;
    if (ch === "]" || ch === ")") depth--;
    if (ch === " " && depth === 0) {
      if (part) parts.push(part);
      part = "";
    } else part += ch;
  }
  if (part) parts.push(part);
  return parts;
}

/**
 * `head args` (e.g. `keyward keys create` and its flags) wrapped at HELP_WIDTH, each continuation
 * line starting under the first argument. A bracketed group is only split when it cannot fit a
 * line of its own.
 */
export function synopsis(head: string, args: string, indent = 2): string[] {
  const start = `${" ".repeat(indent)}${head}`;
  if (args === "") return [start];
  const column = start.length + 1;
  const width = HELP_WIDTH - column;
  const parts = synopsisParts(args).flatMap((p) => (p.length > width ? p.split(" ") : [p]));
  return flow(parts, width).map((line, i) => (i === 0 ? `${start} ` : " ".repeat(column)) + line);
}
