/**
 * `agent:*` stands for every `agent:<name>`; `mcp:*` for every `mcp:<server>` and per-tool scope;
 * `mcp:<server>` for every `mcp:<server>:<tool>` of that server (SPEC §12). Every other scope only
 * for itself.
 */
export function covers(held: ReadonlySet<string> | readonly string[], wanted: string): boolean {
  const has = (s: string) => (Array.isArray(held) ? held.includes(s) : (held as ReadonlySet<string>).has(s));
  if (has(wanted)) return true;
  if (wanted.startsWith("agent:")) return has("agent:*");
  if (!wanted.startsWith("mcp:")) return false;
  if (has("mcp:*")) return true;
  const tool = wanted.indexOf(":", 4);
  return tool > 4 && has(wanted.slice(0, tool));
}

/** The first requested scope the holder does not have, or undefined when all are covered. */
export function firstUncovered(
  held: ReadonlySet<string> | readonly string[],
  requested: readonly string[],
): string | undefined {
  return requested.find((s) => !covers(held, s));
}
