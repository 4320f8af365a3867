import { CENTER, DECODED, END, ESCAPE_FIELDS, type Escape, type EscapeList, START } from "./escape-view.js";

/**
 * The parts of a scheme's view worth matching in, and those parts decoded. A match found in a
 * view but not in the text holds an escape that can be part of a match (a center: one that decodes
 * to bytes some pattern holds); any other match is in the text too, where the plain scan finds
 * it. So a view is decoded and scanned only within a pattern's length (`reach` decoded bytes) of
 * a center; text dense with escapes of characters no secret holds (`&amp;`, `\u003c`) costs
 * finding its escapes and nothing more. Windows are in the text's positions, each from one unit
 * (a plain byte, a line break, an escape) boundary to another; windows closer than two reaches
 * are one.
 *
 * A window's decoded bytes are copied in runs (memcpy between escapes and line breaks); its way
 * back to the text is one entry per escape and line break, not one per byte.
 */

const LF = 0x0a;
const CR = 0x0d;

/** Fields of an entry of `WindowView.entries` (ENTRY_FIELDS numbers per escape or line break). */
const VIEW_START = 0;
const VIEW_END = 1;
const TEXT_START = 2;
const TEXT_END = 3;
const ENTRY_FIELDS = 4;

export interface WindowView {
  /** The window's text decoded, line breaks removed. */
  data: Buffer;
  /** Text position of the window's start and end. */
  from: number;
  to: number;
  /** Per escape and line break in the window, ascending: view start and end, text start and end. */
  entries: Int32Array;
  entryCount: number;
}

/**
 * The windows of `list`'s view worth scanning: flattened `[from, to, first escape, end escape)`
 * (escape indices into `list`). An escape cut off at the end counts as a center there.
 */
export function viewWindows(src: Buffer, list: EscapeList, reach: number, lineBreaks: readonly number[]): number[] {
  const windows: number[] = [];
  const walk = createWalker(src, list, lineBreaks);
  const { at, count, partialFrom } = list;
  const partial = partialFrom < src.length;
  // Centers in order; index `count` is the cut-off escape, if any (empty, at partialFrom).
  const last = partial ? count : count - 1;
  const startOf = (i: number) => (i < count ? (at[i * ESCAPE_FIELDS + START] as number) : partialFrom);
  const endOf = (i: number) => (i < count ? (at[i * ESCAPE_FIELDS + END] as number) : partialFrom);
  const isCenter = (i: number) => i === count || at[i * ESCAPE_FIELDS + CENTER] === 1;
  let i = 0;
  while (i <= last && !isCenter(i)) i++;
  if (i > last) return windows;
  walk.back(startOf(i), i, reach, 0);
  let from = walk.t;
  let firstEscape = walk.k;
  let prev = i;
  // The first escape after center `c` (the cut-off escape is after every one).
  const after = (c: number) => Math.min(c + 1, count);
  for (let j = i + 1; j <= last + 1; j++) {
    if (j <= last && !isCenter(j)) continue;
    if (j <= last) {
      // Within two reaches of the previous center (in decoded bytes): the windows are one.
      walk.forward(endOf(prev), after(prev), 2 * reach + 1, startOf(j));
      if (walk.counted <= 2 * reach) {
        prev = j;
        continue;
      }
    }
    walk.forward(endOf(prev), after(prev), reach, partialFrom);
    windows.push(from, walk.t, firstEscape, walk.k);
    if (j > last) break;
    walk.back(startOf(j), j, reach, walk.t);
    from = walk.t;
    firstEscape = walk.k;
    prev = j;
  }
  return windows;
}

/**
 * Steps over units (escapes whole, runs of plain text at once) counting decoded bytes, line
 * breaks counting none. Each step leaves `t` (a text position between units), `k` (the first
 * escape at or after `t`) and `counted`.
 */
function createWalker(src: Buffer, list: EscapeList, lineBreaks: readonly number[]) {
  const { at, count } = list;
  const walker = {
    t: 0,
    k: 0,
    counted: 0,
    /** From `t` (escape `k` the first at or after it) until `need` bytes or `limit`. */
    forward(t: number, k: number, need: number, limit: number) {
      let n = 0;
      while (n < need && t < limit) {
        const s = at[k * ESCAPE_FIELDS + START] as number;
        if (k < count && s === t) {
          n += at[k * ESCAPE_FIELDS + DECODED] as number;
          t = at[k * ESCAPE_FIELDS + END] as number;
          k++;
          continue;
        }
        const runEnd = Math.min(k < count ? s : limit, limit);
        const bytes = runEnd - t - lineBreaksIn(lineBreaks, t, runEnd);
        if (n + bytes < need) {
          n += bytes;
          t = runEnd;
          continue;
        }
        for (; n < need && t < runEnd; t++) if (!isLineBreak(src[t] as number)) n++;
      }
      walker.t = t;
      walker.k = k;
      walker.counted = n;
    },
    /** Back from `t` (escape `k` the first at or after it) until `need` bytes or `floor`. */
    back(t: number, k: number, need: number, floor: number) {
      let n = 0;
      while (n < need && t > floor) {
        const e = at[(k - 1) * ESCAPE_FIELDS + END] as number;
        if (k > 0 && e === t) {
          k--;
          n += at[k * ESCAPE_FIELDS + DECODED] as number;
          t = at[k * ESCAPE_FIELDS + START] as number;
          continue;
        }
        const runStart = Math.max(k > 0 ? e : floor, floor);
        const bytes = t - runStart - lineBreaksIn(lineBreaks, runStart, t);
        if (n + bytes < need) {
          n += bytes;
          t = runStart;
          continue;
        }
        for (; n < need && t > runStart; t--) if (!isLineBreak(src[t - 1] as number)) n++;
      }
      walker.t = t;
      walker.k = k;
      walker.counted = n;
    },
  };
  return walker;
}

const isLineBreak = (b: number) => b === LF || b === CR;

/** Index of the first of the ascending `positions` that is ≥ `value`. */
function firstAtOrAfter(positions: readonly number[], value: number): number {
  let lo = 0;
  let hi = positions.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((positions[mid] as number) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function lineBreaksIn(lineBreaks: readonly number[], from: number, to: number): number {
  if (lineBreaks.length === 0 || from >= to) return 0;
  return firstAtOrAfter(lineBreaks, to) - firstAtOrAfter(lineBreaks, from);
}

/** Runs shorter than this are copied byte by byte: a native copy costs more to call. */
const COPY_CALL = 32;

/** The window `[from, to)` of `list`'s view (escapes `[k0, k1)` inside it), decoded. */
export function decodeWindow(
  src: Buffer,
  list: EscapeList,
  final: boolean,
  lineBreaks: readonly number[],
  window: readonly number[],
  w: number,
): WindowView {
  const from = window[w] as number;
  const to = window[w + 1] as number;
  const k0 = window[w + 2] as number;
  const k1 = window[w + 3] as number;
  const { at, scheme } = list;
  let lb = firstAtOrAfter(lineBreaks, from);
  const lbEnd = firstAtOrAfter(lineBreaks, to);
  const data = Buffer.allocUnsafe(to - from);
  const entries = new Int32Array((k1 - k0 + lbEnd - lb) * ENTRY_FIELDS);
  const found: Escape = { length: 0, decoded: 0 };
  let v = 0;
  let n = 0;
  let t = from;
  const copy = (until: number) => {
    if (until - t > COPY_CALL) v += src.copy(data, v, t, until);
    else for (let i = t; i < until; i++) data[v++] = src[i] as number;
    t = until;
  };
  const entry = (decoded: number, textStart: number, textEnd: number) => {
    entries[n + VIEW_START] = v;
    entries[n + VIEW_END] = v + decoded;
    entries[n + TEXT_START] = textStart;
    entries[n + TEXT_END] = textEnd;
    n += ENTRY_FIELDS;
  };
  for (let k = k0; k <= k1; k++) {
    const runEnd = k < k1 ? (at[k * ESCAPE_FIELDS + START] as number) : to;
    for (; lb < lbEnd && (lineBreaks[lb] as number) < runEnd; lb++) {
      const p = lineBreaks[lb] as number;
      copy(p);
      entry(0, p, p + 1);
      t = p + 1;
    }
    copy(runEnd);
    if (k === k1) break;
    scheme.read(src, runEnd, final, data, v, found);
    entry(found.decoded, runEnd, runEnd + found.length);
    v += found.decoded;
    t = runEnd + found.length;
  }
  return { data: data.subarray(0, v), from, to, entries, entryCount: n / ENTRY_FIELDS };
}

/** Index (multiple of ENTRY_FIELDS) of the last entry whose view start is ≤ `v`, or a negative number. */
function lastEntryAtOrBefore(w: WindowView, v: number): number {
  let lo = 0;
  let hi = w.entryCount - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((w.entries[mid * ENTRY_FIELDS + VIEW_START] as number) <= v) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found * ENTRY_FIELDS;
}

/** Text position where the window's byte `v` comes from (the start of its escape, if decoded). */
export function sourceStart(w: WindowView, v: number): number {
  if (v >= w.data.length) return w.to;
  const e = lastEntryAtOrBefore(w, v);
  if (e < 0) return w.from + v;
  const viewEnd = w.entries[e + VIEW_END] as number;
  if (v < viewEnd) return w.entries[e + TEXT_START] as number;
  return (w.entries[e + TEXT_END] as number) + (v - viewEnd);
}

/** Text position just after the window's byte `v` (the end of its escape, if decoded). */
export function sourceEnd(w: WindowView, v: number): number {
  const e = lastEntryAtOrBefore(w, v);
  if (e >= 0 && v < (w.entries[e + VIEW_END] as number)) return w.entries[e + TEXT_END] as number;
  return sourceStart(w, v) + 1;
}
