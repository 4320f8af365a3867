import { ESCAPE_SCHEMES } from "./escape-schemes.js";
import { type EscapeList, type EscapeScheme, findEscapes, snapToBoundary } from "./escape-view.js";
import { createUnfolder, foldLineBreaks } from "./line-breaks.js";
import { mergeRanges, type PatternMatcher, type ScanResult } from "./pattern-matcher.js";
import { decodeWindow, sourceEnd, sourceStart, viewWindows } from "./view-windows.js";

const NO_LINE_BREAKS: readonly number[] = [];

/**
 * One scan of a text for the redactor: the matcher over the text with its line breaks removed
 * (line-breaks.ts) and over each escaping scheme's view of it (escape-view.ts) where an escape
 * can be part of a match (view-windows.ts), the ranges found in all of them merged, in the
 * text's own positions.
 *
 * `undecidedFrom` is the least of every scan's (an escape cut off by the end of the input counts
 * as undecided from its start), moved back to the start of any escape it falls inside in some
 * view: the stream resumes there, and each view then decodes the rest exactly as one pass would.
 */
export function createScanner(matcher: PatternMatcher, schemes: readonly EscapeScheme[] = ESCAPE_SCHEMES) {
  const reach = matcher.maxLength - 1;
  const scan = (data: Buffer, final: boolean): ScanResult => {
    const folded = foldLineBreaks(data);
    const raw = scanFolded(matcher, data, folded, final);
    let ranges = raw.ranges;
    let undecided = raw.undecidedFrom;
    const lists: EscapeList[] = [];
    for (const scheme of schemes) {
      const list = findEscapes(data, scheme, final, matcher.alphabet);
      if (list === undefined) continue;
      lists.push(list);
      if (!list.centers) continue;
      if (ranges === raw.ranges) ranges = [...ranges];
      const lineBreaks = folded?.removed ?? NO_LINE_BREAKS;
      undecided = Math.min(undecided, scanWindows(matcher, data, list, final, lineBreaks, reach, ranges));
    }
    if (ranges !== raw.ranges) ranges = mergeRanges(ranges);
    if (!final && undecided < data.length) {
      for (let moved = true; moved; ) {
        moved = false;
        for (const list of lists) {
          const c = snapToBoundary(list, undecided);
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
function scanFolded(
  matcher: PatternMatcher,
  data: Buffer,
  folded: ReturnType<typeof foldLineBreaks>,
  final: boolean,
): ScanResult {
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
 * The matcher over each window of a scheme's view; ranges found are pushed to `ranges` in the
 * text's positions. Returns where the undecided bytes start (the text's length if none): only the
 * window that reaches the view's end can leave any, or an escape cut off there.
 */
function scanWindows(
  matcher: PatternMatcher,
  data: Buffer,
  list: EscapeList,
  final: boolean,
  lineBreaks: readonly number[],
  reach: number,
  ranges: number[],
): number {
  const windows = viewWindows(data, list, reach, lineBreaks);
  let undecided = list.partialFrom;
  for (let w = 0; w < windows.length; w += 4) {
    const view = decodeWindow(data, list, final, lineBreaks, windows, w);
    const atEnd = view.to >= list.partialFrom;
    const found = matcher.scan(view.data, atEnd ? final && list.partialFrom === data.length : true);
    for (let i = 0; i < found.ranges.length; i += 2) {
      ranges.push(sourceStart(view, found.ranges[i] as number), sourceEnd(view, (found.ranges[i + 1] as number) - 1));
    }
    if (atEnd && found.undecidedFrom < view.data.length) undecided = sourceStart(view, found.undecidedFrom);
  }
  return undecided;
}
