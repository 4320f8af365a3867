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
  /**
   * The text with its escapes decoded (up to `partialFrom`); `undefined` when no escape can be part
   * of a match (each decodes to a byte no pattern holds): then only the escapes' places are needed.
   */
  data: Buffer | undefined;
  /**
   * One entry per escape, flattened: view start, view end, text start, text end; ascending. The
   * text's own line breaks are entries too (one byte, decoding to nothing): escapes are decoded
   * in the text as it is, as a decoder reads it, and line breaks are ignored after that.
   */
  escapes: number[];
  /** Where an escape cut off by the end of a non-final input starts; the text's length if none. */
  partialFrom: number;
}

/**
 * The view of `src` under `scheme`, or `undefined` when `src` holds no introducer (it is its own
 * view). `alphabet` (the bytes patterns hold) decides whether the decoded text is worth building.
 *
 * Two passes: the first finds the escapes without copying anything; the second, only when one of
 * them can be part of a match, builds the decoded text. HTML and JSON text is dense with escapes
 * of characters few secrets hold (`&amp;`, `\"`), and copying 1 MiB byte by byte costs as much as
 * scanning it.
 */
export function decodeView(
  src: Buffer,
  scheme: EscapeScheme,
  final: boolean,
  alphabet: Uint8Array,
): EscapeView | undefined {
  if (src.indexOf(scheme.introducer) === -1) return undefined;
  const escapes: number[] = [];
  const found: Escape = { length: 0, decoded: 0 };
  const scratch = Buffer.allocUnsafe(16);
  const introducer = scheme.introducer;
  const len = src.length;
  let out = 0;
  let partialFrom = len;
  let relevant = false;
  let at = 0;
  while (at < len) {
    const b = src[at] as number;
    if (b !== introducer) {
      // A line break in the text is removed from the view, as from the text (line-breaks.ts):
      // an entry that decodes to nothing, one byte long (no escape is), never a reason to decode.
      if (b === LF || b === CR) {
        escapes.push(out);
        escapes.push(out);
        escapes.push(at);
        escapes.push(at + 1);
      } else out++;
      at++;
      continue;
    }
    if (!scheme.read(src, at, final, scratch, 0, found)) {
      partialFrom = at;
      // What the cut-off escape completes is decided with the next chunk: the view must exist.
      relevant = true;
      break;
    }
    if (found.length === 0) {
      out++;
      at++;
      continue;
    }
    if (!relevant) relevant = canBeInMatch(alphabet, scratch, found.decoded);
    // One value per push: a push of several is not inlined, and this runs once per escape.
    escapes.push(out);
    escapes.push(out + found.decoded);
    escapes.push(at);
    escapes.push(at + found.length);
    out += found.decoded;
    at += found.length;
  }
  if (!relevant) return { data: undefined, escapes, partialFrom };
  const data = Buffer.allocUnsafe(out);
  let from = 0;
  let to = 0;
  for (let e = 0; e < escapes.length; e += 4) {
    const srcStart = escapes[e + 2] as number;
    const srcEnd = escapes[e + 3] as number;
    if (srcStart - from > 32) to += src.copy(data, to, from, srcStart);
    else for (let i = from; i < srcStart; i++) data[to++] = src[i] as number;
    if (srcEnd - srcStart > 1) {
      scheme.read(src, srcStart, final, data, to, found);
      to += found.decoded;
    }
    from = srcEnd;
  }
  src.copy(data, to, from, partialFrom);
  return { data, escapes, partialFrom };
}

/** Is escape entry `e` a line break of the text itself (removed, not decoded)? */
export const isLineBreak = (escapes: readonly number[], e: number): boolean =>
  (escapes[e + 3] as number) - (escapes[e + 2] as number) === 1;

/**
 * Can an escape decoded to `decoded[0, n)` be part of a match? Not if it decodes to a byte no
 * pattern holds. One that decodes to nothing (a line break) joins what is around it, which may be
 * escapes too: it always can.
 */
function canBeInMatch(alphabet: Uint8Array, decoded: Uint8Array, n: number): boolean {
  if (n === 0) return true;
  for (let i = 0; i < n; i++) if (alphabet[decoded[i] as number] === 0) return false;
  return true;
}

const LF = 0x0a;
const CR = 0x0d;

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
  if (v >= (view.data?.length ?? 0)) return view.partialFrom;
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
