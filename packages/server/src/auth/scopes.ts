/** `agent:*` stands for every `agent:<name>`; every other scope only for itself. */
export function covers(held: ReadonlySet<string> | readonly string[], wanted: string): boolean {
  const has = (s: string) => (Array.isArray(held) ? held.includes(s) : (held as ReadonlySet<string>).has(s));
  return has(wanted) || (wanted.startsWith("agent:") && has("agent:*"));
}

/** The first requested scope the holder does not have, or undefined when all are covered. */
export function firstUncovered(
  held: ReadonlySet<string> | readonly string[],
  requested: readonly string[],
): string | undefined {
  return requested.find((s) => !covers(held, s));
}
