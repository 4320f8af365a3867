import type { Redactor } from "../redaction/index.js";

/**
 * Deep redaction of what a tool returns or throws. The result is a copy made of plain data:
 * strings, keys, bytes, arrays, plain objects, Maps and Sets are redacted; a class instance is
 * replaced by its JSON form (`toJSON()`, else its own enumerable fields), because what a caller
 * does next (JSON.stringify for the model) reads that form, and a getter or private field could
 * hold a secret the copy cannot see otherwise. Dates stay Dates. Cycles are kept as cycles.
 */
export interface Tally {
  count: number;
}

export function redactValue(value: unknown, r: Redactor, tally: Tally, seen = new Map<object, unknown>()): unknown {
  if (typeof value === "string") return str(value, r, tally);
  if (typeof value !== "object" || value === null) return value;
  const done = seen.get(value);
  if (done !== undefined) return done;
  if (value instanceof Error) return redactError(value, r, tally, seen);
  if (value instanceof Date) return new Date(value.getTime());
  if (value instanceof Uint8Array) return bytes(value, r, tally);
  if (value instanceof ArrayBuffer) {
    const out = bytes(new Uint8Array(value), r, tally);
    return out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength);
  }
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    seen.set(value, out);
    for (const item of value) out.push(redactValue(item, r, tally, seen));
    return out;
  }
  if (value instanceof Map) {
    const out = new Map<unknown, unknown>();
    seen.set(value, out);
    for (const [k, v] of value) out.set(redactValue(k, r, tally, seen), redactValue(v, r, tally, seen));
    return out;
  }
  if (value instanceof Set) {
    const out = new Set<unknown>();
    seen.set(value, out);
    for (const v of value) out.add(redactValue(v, r, tally, seen));
    return out;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  const plain = proto === Object.prototype || proto === null;
  const json = (value as { toJSON?: unknown }).toJSON;
  if (!plain && typeof json === "function") {
    const form: unknown = json.call(value);
    // A toJSON answering itself (or a fresh object each time) must not loop.
    seen.set(value, null);
    const out = form === value ? ownFields(value, r, tally, seen) : redactValue(form, r, tally, seen);
    seen.set(value, out);
    return out;
  }
  return ownFields(value, r, tally, seen);
}

function ownFields(value: object, r: Redactor, tally: Tally, seen: Map<object, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  seen.set(value, out);
  for (const k of Object.keys(value)) {
    const key = str(k, r, tally);
    const v = redactValue((value as Record<string, unknown>)[k], r, tally, seen);
    // A "__proto__" key (JSON.parse makes such fields) must stay a plain field, not a prototype.
    if (key === "__proto__")
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
    else out[key] = v;
  }
  return out;
}

function str(s: string, r: Redactor, tally: Tally): string {
  const { output, count } = r.redactString(s);
  tally.count += count;
  return output;
}

function bytes(b: Uint8Array, r: Redactor, tally: Tally): Uint8Array {
  const { output, count } = r.redact(b);
  tally.count += count;
  if (Buffer.isBuffer(b)) return count === 0 ? Buffer.from(b) : output;
  return new Uint8Array(output);
}

/**
 * An Error carrying the redacted `name`, `message`, `stack` and `cause` of `err`, the redacted
 * `errors` of an AggregateError, and those own fields that are strings, numbers, booleans or plain
 * data (an HTTP client's error often holds the request, headers and all: class instances such as
 * sockets or header bags are dropped rather than copied). The copy is a plain `Error`: its class is
 * not reconstructed, so compare `name` or `code`, not `instanceof`.
 */
export function redactError(err: Error, r: Redactor, tally: Tally, seen = new Map<object, unknown>()): Error {
  const out = new Error(str(String(err.message), r, tally));
  seen.set(err, out);
  Object.defineProperty(out, "name", { value: str(String(err.name), r, tally), writable: true, configurable: true });
  const stack = typeof err.stack === "string" ? str(err.stack, r, tally) : undefined;
  Object.defineProperty(out, "stack", { value: stack, writable: true, configurable: true });
  if ("cause" in err) {
    Object.defineProperty(out, "cause", {
      value: redactValue(err.cause, r, tally, seen),
      writable: true,
      configurable: true,
    });
  }
  const errors = (err as { errors?: unknown }).errors;
  if (Array.isArray(errors)) {
    Object.defineProperty(out, "errors", {
      value: redactValue(errors, r, tally, seen),
      writable: true,
      configurable: true,
    });
  }
  for (const [k, v] of Object.entries(err)) {
    if (k === "message" || k === "name" || k === "stack" || k === "cause" || k === "errors") continue;
    if (!isPlainData(v)) continue;
    Object.defineProperty(out, str(k, r, tally), {
      value: redactValue(v, r, tally, seen),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function isPlainData(v: unknown): boolean {
  if (v === null || typeof v !== "object") return typeof v !== "function" && typeof v !== "symbol";
  if (Array.isArray(v) || v instanceof Error || v instanceof Uint8Array) return true;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
