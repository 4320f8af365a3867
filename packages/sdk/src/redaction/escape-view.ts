/**
 * The escapes of one escaping scheme (URL percent-encoding, JSON string escapes, HTML character
 * references) in a text. The redactor matches its patterns in each scheme's *view* of the text,
 * the text with that scheme's escapes decoded, as well as in the text: an escaped secret is the
 * secret again in the view of its scheme, whichever characters its encoder chose to escape (Go's
 * `encoding/json` writes `&` as `\u0026`, Python's `quote` keeps `/`, an HTML encoder may write
 * `&#x26;` or `&amp;`), so no list of whole-secret encodings has to guess them.
 *
 * One view per scheme, not one decoder for all: a single decoder would undo escapes of one scheme
 * inside text escaped by another (`%41` inside an HTML-escaped secret is the secret's own text).
 * Decoding is greedy from left to right, as a real decoder reads; a stream cuts its input only
 * where every view is between two escapes (`snapToBoundary`), so the next chunk decodes the same.
 *
 * Only the escapes are found here, jumping from introducer to introducer with `indexOf` (native,
 * many bytes per step): text dense with escapes is mostly text between them, and a view is built
 * only around escapes that can be part of a match (view-windows.ts).
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

/** Fields of an escape in `EscapeList.at` (a stride of ESCAPE_FIELDS numbers per escape). */
export const START = 0;
export const END = 1;
export const DECODED = 2;
/** 1 when the escape can lie inside a match (see `canJoinMatch`): a view is built around it. */
export const CENTER = 3;
export const ESCAPE_FIELDS = 4;

export interface EscapeList {
  scheme: EscapeScheme;
  /** Per escape, ascending: text start, text end, decoded length, center flag (see the fields above). */
  at: Int32Array;
  /** Number of escapes. */
  count: number;
  /** Whether any escape is a center (or an escape is cut off at the end): the view is worth building. */
  centers: boolean;
  /**
   * Where an escape cut off by the end of a non-final input starts (the view stops there and
   * the next chunk decides it); the text's length if none.
   */
  partialFrom: number;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * The escapes of `scheme` in `src`, or `undefined` when it holds no introducer. `alphabet` (the
 * bytes patterns hold) decides which escapes are centers.
 *
 * No escape holds a line break (every reader stops at one, as a decoder does: `%4\n1` is not
 * `A`), so an escape's bounds are the same in the text and in the text without line breaks.
 */
export function findEscapes(
  src: Buffer,
  scheme: EscapeScheme,
  final: boolean,
  alphabet: Uint8Array,
): EscapeList | undefined {
  const introducer = scheme.introducer;
  let at = src.indexOf(introducer);
  if (at === -1) return undefined;
  const len = src.length;
  const found: Escape = { length: 0, decoded: 0 };
  const scratch = Buffer.allocUnsafe(16);
  let list = new Int32Array(64 * ESCAPE_FIELDS);
  let n = 0;
  let centers = false;
  let partialFrom = len;
  let lastEnd = -1;
  while (at !== -1) {
    if (!scheme.read(src, at, final, scratch, 0, found)) {
      partialFrom = at;
      // What the cut-off escape completes is decided with the next chunk: the view must exist.
      centers = true;
      break;
    }
    if (found.length === 0) {
      at = nextIntroducer(src, introducer, at + 1);
      continue;
    }
    const end = at + found.length;
    const center =
      found.decoded > 0
        ? allInAlphabet(alphabet, scratch, found.decoded)
        : canJoinMatch(src, at, end, lastEnd === at, introducer, alphabet);
    if (n === list.length) {
      const grown = new Int32Array(list.length * 2);
      grown.set(list);
      list = grown;
    }
    list[n + START] = at;
    list[n + END] = end;
    list[n + DECODED] = found.decoded;
    list[n + CENTER] = center ? 1 : 0;
    n += ESCAPE_FIELDS;
    if (center) centers = true;
    lastEnd = end;
    at = nextIntroducer(src, introducer, end);
  }
  return { scheme, at: list, count: n / ESCAPE_FIELDS, centers, partialFrom };
}

/** Bytes looked at one by one before handing the search to `indexOf`. */
const NEAR = 24;

/**
 * The next introducer at or after `from`, or -1. In text dense with escapes the next one is
 * usually a few bytes on, closer than a native call's cost pays for: a short loop looks first.
 */
function nextIntroducer(src: Buffer, introducer: number, from: number): number {
  const near = Math.min(from + NEAR, src.length);
  for (let i = from; i < near; i++) if (src[i] === introducer) return i;
  return near < src.length ? src.indexOf(introducer, near) : -1;
}

/**
 * Can an escape that decodes to nothing (an escaped line break) lie inside a match? Only between
 * two bytes a pattern holds. Judged from the text's neighbouring bytes: a plain byte is its own
 * view byte; a neighbour that is an escape, a line break or the input's edge could be anything,
 * so the answer is yes (a center too many costs a window, never a match).
 */
function canJoinMatch(
  src: Buffer,
  start: number,
  end: number,
  afterEscape: boolean,
  introducer: number,
  alphabet: Uint8Array,
): boolean {
  const before = start === 0 || afterEscape ? -1 : (src[start - 1] as number);
  if (before !== -1 && before !== LF && before !== CR && alphabet[before] === 0) return false;
  const after = end >= src.length ? -1 : (src[end] as number);
  if (after !== -1 && after !== LF && after !== CR && after !== introducer && alphabet[after] === 0) return false;
  return true;
}

/** Does every decoded byte occur in some pattern? A match holds no other byte. */
function allInAlphabet(alphabet: Uint8Array, decoded: Uint8Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (alphabet[decoded[i] as number] === 0) return false;
  return true;
}

/** `cut`, or the start of the escape it falls inside: where decoding may restart unchanged. */
export function snapToBoundary(list: EscapeList, cut: number): number {
  // The last escape starting before the cut.
  let lo = 0;
  let hi = list.count - 1;
  let e = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((list.at[mid * ESCAPE_FIELDS + START] as number) <= cut - 1) {
      e = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (e >= 0 && cut < (list.at[e * ESCAPE_FIELDS + END] as number)) return list.at[e * ESCAPE_FIELDS + START] as number;
  return cut;
}
