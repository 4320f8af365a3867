import { ESCAPE_SCHEMES } from "./escape-schemes.js";
import {
  decodeView,
  type EscapeScheme,
  type EscapeView,
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
  return function scan(data: Buffer, final: boolean): ScanResult {
    const folded = foldLineBreaks(data);
    const src = folded?.data ?? data;
    const raw = matcher.scan(src, final);
    let ranges = raw.ranges;
    let undecided = raw.undecidedFrom;
    const views: EscapeView[] = [];
    for (const scheme of schemes) {
      const view = decodeView(src, scheme, final);
      if (view === undefined) continue;
      views.push(view);
      const found = matcher.scan(view.data, final && view.partialFrom === src.length);
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
    if (!final && undecided < src.length) {
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
    if (folded === undefined) return { ranges, undecidedFrom: undecided };
    const unfold = createUnfolder(folded.removed);
    const original: number[] = [];
    for (let i = 0; i < ranges.length; i += 2) {
      // Disjoint in the folded data, so disjoint here: the merging stands.
      original.push(...unfold.range(ranges[i] as number, ranges[i + 1] as number));
    }
    return { ranges: original, undecidedFrom: undecided >= src.length ? data.length : unfold.byteAt(undecided) };
  };
}
