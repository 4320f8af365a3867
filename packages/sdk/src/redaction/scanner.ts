import { ESCAPE_SCHEMES } from "./escape-schemes.js";
import {
  decodeView,
  type EscapeScheme,
  type EscapeView,
  isLineBreak,
  snapToBoundary,
  sourceEnd,
  sourceStart,
} from "./escape-view.js";
import { createUnfolder, foldLineBreaks } from "./line-breaks.js";
import { mergeRanges, type PatternMatcher, type ScanResult } from "./pattern-matcher.js";

/**
 * One scan of a text for the redactor: the matcher over the text with its line breaks removed
 * (line-breaks.ts) and over each escaping scheme's view of it (escape-view.ts), the ranges found
 * in all of them merged, in the text's own positions.
 *
 * `undecidedFrom` is the least of every view's (an escape cut off by the end of the input counts
 * as undecided from its start), moved back to the start of any escape it falls inside in some
 * view: the stream resumes there, and each view then decodes the rest exactly as one pass would.
 * A view costs a copy and a scan of the input, and only inputs that hold its introducer pay it.
 */
export function createScanner(matcher: PatternMatcher, schemes: readonly EscapeScheme[] = ESCAPE_SCHEMES) {
  const scan = (data: Buffer, final: boolean): ScanResult => {
    const raw = scanFolded(matcher, data, final);
    let ranges = raw.ranges;
    let undecided = raw.undecidedFrom;
    const views: EscapeView[] = [];
    for (const scheme of schemes) {
      const view = decodeView(data, scheme, final, matcher.alphabet);
      if (view === undefined) continue;
      views.push(view);
      if (view.data === undefined) continue;
      const found = scanAroundEscapes(matcher, view, view.partialFrom < data.length, final);
      if (found.ranges.length > 0) {
        if (ranges === raw.ranges) ranges = [...ranges];
        for (let i = 0; i < found.ranges.length; i += 2) {
          ranges.push(
            sourceStart(view, found.ranges[i] as number),
            sourceEnd(view, (found.ranges[i + 1] as number) - 1),
          );
        }
      }
      undecided = Math.min(undecided, sourceStart(view, found.undecidedFrom));
    }
    if (ranges !== raw.ranges) ranges = mergeRanges(ranges);
    if (!final && undecided < data.length) {
      for (let moved = true; moved; ) {
        moved = false;
        for (const view of views) {
          const c = snapToBoundary(view, undecided);
          if (c < undecided) {
            undecided = c;
            moved = true;
          }
        }
      }
    }
    return { ranges, undecidedFrom: undecided };
  };
  // Every path once before real input (as the matcher does, pattern-matcher.ts): a path the
  // optimizing compiler never saw run sends the decoding loop back to the interpreter each time
  // it is taken (measured: the views' decoding 3-4× slower on escape-dense text).
  const sample = Buffer.from("x%41%zz\\u0041\\n\\q&amp;&#38;&#x26;&ampx&zz;\r\n%4");
  scan(sample, true);
  scan(sample, false);
  return scan;
}

/** The matcher over the text with its line breaks removed, in the text's positions. */
function scanFolded(matcher: PatternMatcher, data: Buffer, final: boolean): ScanResult {
  const folded = foldLineBreaks(data);
  if (folded === undefined) return matcher.scan(data, final);
  const found = matcher.scan(folded.data, final);
  const unfold = createUnfolder(folded.removed);
  const ranges: number[] = [];
  for (let i = 0; i < found.ranges.length; i += 2) {
    // Disjoint in the folded data, so disjoint here: the matcher's merging stands.
    ranges.push(...unfold.range(found.ranges[i] as number, found.ranges[i + 1] as number));
  }
  const undecidedFrom = found.undecidedFrom >= folded.data.length ? data.length : unfold.byteAt(found.undecidedFrom);
  return { ranges, undecidedFrom };
}

/**
 * The matcher over a view, but only within a pattern's length of an escape that can be part of a
 * match: a match without an escape is in the text as well, where the plain scan finds it, and an
 * escape that decodes to a byte no pattern holds (`&amp;`, `\"` for most secrets) is in none.
 * Text dense with such escapes (HTML, JSON with quotes) then costs little more than its decoding.
 */
function scanAroundEscapes(matcher: PatternMatcher, view: EscapeView, partial: boolean, final: boolean): ScanResult {
  const { escapes } = view;
  const data = view.data as Buffer;
  const reach = matcher.maxLength - 1;
  const ranges: number[] = [];
  let undecidedFrom = data.length;
  let from = -1;
  let to = -1;
  const flush = () => {
    if (from === -1) return;
    const atEnd = to >= data.length;
    const found = matcher.scan(data.subarray(from, atEnd ? data.length : to), (final && !partial) || !atEnd);
    for (const r of found.ranges) ranges.push(from + r);
    if (atEnd && found.undecidedFrom < data.length - from) undecidedFrom = from + found.undecidedFrom;
  };
  // An escape cut off by the end of the input (the view stops before it) may complete a match
  // the view's last bytes begin: it counts as one more escape, at the end.
  const count = escapes.length + (partial ? 4 : 0);
  for (let e = 0; e < count; e += 4) {
    const start = e < escapes.length ? (escapes[e] as number) : data.length;
    const end = e < escapes.length ? (escapes[e + 1] as number) : data.length;
    if (
      e < escapes.length &&
      (isLineBreak(escapes, e) || !joinsMatch(matcher.alphabet, data, start, end, final && !partial))
    )
      continue;
    const wFrom = Math.max(0, start - reach);
    const wTo = Math.min(data.length, end + reach);
    if (from !== -1 && wFrom <= to) to = Math.max(to, wTo);
    else {
      flush();
      from = wFrom;
      to = wTo;
    }
  }
  flush();
  // A window's scan merged its own ranges; windows do not overlap, so the list is in order.
  return { ranges, undecidedFrom };
}

/**
 * Can the escape decoded to `data[start, end)` lie inside a match? One that decodes to nothing
 * can if it joins two bytes that can, or ends a view whose next bytes are still to come.
 */
function joinsMatch(alphabet: Uint8Array, data: Buffer, start: number, end: number, final: boolean): boolean {
  if (start === end) {
    if (start === 0) return false;
    if (start >= data.length) return !final;
    return alphabet[data[start - 1] as number] === 1 && alphabet[data[start] as number] === 1;
  }
  for (let i = start; i < end; i++) if (alphabet[data[i] as number] === 0) return false;
  return true;
}
