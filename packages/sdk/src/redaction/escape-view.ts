/**
 * A text with one escaping scheme undone (URL percent-encoding, JSON string escapes, HTML
 * character references), and the way back to the text's own positions. The redactor matches its
 * patterns in each such view as well as in the text: an escaped secret is the secret again in the
 * view of its scheme, whichever characters its encoder chose to escape (Go's `encoding/json`
 * writes `&` as `\u0026`, Python's `quote` keeps `/`, an HTML encoder may write `&#x26;` or
 * `&amp;`), so no list of whole-secret encodings has to guess them.
 *
 * One view per scheme, not one decoder for all: a single decoder would undo escapes of one scheme
 * inside text escaped by another (`%41` inside an HTML-escaped secret is the secret's own text).
 * Decoding is greedy from left to right, as a real decoder reads; a stream cuts its input only
 * where every view is between two escapes (`snapToBoundary`), so the next chunk decodes the same.
 */

/** What a reader found at an introducer (`%`, `\`, `&`). */
export interface Escape {
  /** Bytes of the escape in the text (0: not an escape, the introducer is literal text). */
  length: number;
  /** Bytes it decodes to, written by the reader at the given position of `out`. */
  decoded: number;
}

/**
 * Reads the escape at `src[at]` (its introducer). Writes what it decodes to into `out` at
 * `outAt` (never more bytes than the escape has) and says how long both are. Returns false when
 * the input ends inside what could still become an escape (only when not `final`).
 */
export type EscapeReader = (
  src: Uint8Array,
  at: number,
  final: boolean,
  out: Buffer,
  outAt: number,
  found: Escape,
) => boolean;

export interface EscapeScheme {
  readonly introducer: number;
  readonly read: EscapeReader;
}

export interface EscapeView {
  /** The text with its escapes decoded (up to `partialFrom`). */
  data: Buffer;
  /** One entry per escape, flattened: view start, view end, text start, text end; ascending. */
  escapes: number[];
  /** Where an escape cut off by the end of a non-final input starts; the text's length if none. */
  partialFrom: number;
}

/** The view of `src` under `scheme`, or `undefined` when `src` holds no introducer (it is its own view). */
export function decodeView(src: Buffer, scheme: EscapeScheme, final: boolean): EscapeView | undefined {
  let next = src.indexOf(scheme.introducer);
  if (next === -1) return undefined;
  const data = Buffer.allocUnsafe(src.length);
  const escapes: number[] = [];
  const found: Escape = { length: 0, decoded: 0 };
  let at = 0;
  let out = 0;
  let partialFrom = src.length;
  while (next !== -1) {
    out += src.copy(data, out, at, next);
    at = next;
    if (!scheme.read(src, at, final, data, out, found)) {
      partialFrom = at;
      break;
    }
    if (found.length === 0) {
      next = src.indexOf(scheme.introducer, at + 1);
      continue;
    }
    escapes.push(out, out + found.decoded, at, at + found.length);
    out += found.decoded;
    at += found.length;
    next = src.indexOf(scheme.introducer, at);
  }
  if (partialFrom === src.length) out += src.copy(data, out, at);
  return { data: data.subarray(0, out), escapes, partialFrom };
}

/** Index (multiple of 4) of the last escape whose `field` is ≤ `value`, or -4. */
function lastAtOrBefore(escapes: readonly number[], field: number, value: number): number {
  let lo = 0;
  let hi = escapes.length / 4 - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((escapes[mid * 4 + field] as number) <= value) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found * 4;
}

/** Text position where the view's byte `v` comes from (the start of its escape, if decoded). */
export function sourceStart(view: EscapeView, v: number): number {
  if (v >= view.data.length) return view.partialFrom;
  const e = lastAtOrBefore(view.escapes, 0, v);
  if (e < 0) return v;
  const viewEnd = view.escapes[e + 1] as number;
  if (v < viewEnd) return view.escapes[e + 2] as number;
  return (view.escapes[e + 3] as number) + (v - viewEnd);
}

/** Text position just after the view's byte `v` (the end of its escape, if decoded). */
export function sourceEnd(view: EscapeView, v: number): number {
  const e = lastAtOrBefore(view.escapes, 0, v);
  if (e >= 0 && v < (view.escapes[e + 1] as number)) return view.escapes[e + 3] as number;
  return sourceStart(view, v) + 1;
}

/** `cut`, or the start of the escape it falls inside: where decoding may restart unchanged. */
export function snapToBoundary(view: EscapeView, cut: number): number {
  const e = lastAtOrBefore(view.escapes, 2, cut - 1);
  if (e >= 0 && cut < (view.escapes[e + 3] as number)) return view.escapes[e + 2] as number;
  return cut;
}
