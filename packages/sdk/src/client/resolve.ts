/** `${credentials.<name>}`; the name runs to the closing brace. */
const PLACEHOLDER = /\$\{credentials\.([^}]+)\}/g;

function isPlain(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * A deep copy of `input` with every placeholder in every string replaced by `lookup(name)`
 * (which throws for a name it cannot answer, so nothing half-resolved is returned). Arrays and
 * plain objects are copied; any other object (Date, Buffer, Map, class instances, functions) is
 * kept as the same reference, since copying it faithfully is not possible in general. Cycles are
 * preserved. Keys are never substituted.
 */
export function resolvePlaceholders<T>(input: T, lookup: (name: string) => string): T {
  const seen = new Map<object, unknown>();
  const replace = (_: string, name: string) => lookup(name);

  function walk(value: unknown): unknown {
    if (typeof value === "string")
      return value.includes("${credentials.") ? value.replace(PLACEHOLDER, replace) : value;
    if (typeof value !== "object" || value === null) return value;
    const done = seen.get(value);
    if (done !== undefined) return done;
    if (Array.isArray(value)) {
      const out: unknown[] = [];
      seen.set(value, out);
      for (const item of value) out.push(walk(item));
      return out;
    }
    if (!isPlain(value)) return value;
    const out: Record<string, unknown> = Object.getPrototypeOf(value) === null ? Object.create(null) : {};
    seen.set(value, out);
    for (const key of Object.keys(value)) {
      // A `__proto__` own key (JSON.parse makes those) must stay data, not become the prototype.
      Object.defineProperty(out, key, {
        value: walk((value as Record<string, unknown>)[key]),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }

  return walk(input) as T;
}
