/**
 * Finds every occurrence of a fixed set of byte patterns in one pass over the input.
 *
 * An Aho–Corasick automaton is built over each pattern's first ANCHOR bytes only, then completed
 * into a DFA (one table lookup per input byte). When an anchor is seen, the rest of its pattern is
 * compared in place. Anchoring keeps the table small however long the secrets are (a 4 KB PEM key
 * gives ~10 patterns of 8 states each, not 10 × 4 KB states), and small tables stay in the CPU's
 * cache; an 8-byte anchor still makes false candidates rare enough that comparing costs nothing
 * measurable.
 *
 * Bytes are mapped to classes first (every byte that no anchor contains shares class 0), so the
 * table has states × classes entries instead of states × 256. States are renumbered so that the
 * states where an anchor ends come last: the hot loop tests one comparison per byte.
 */

const ANCHOR = 8;

export interface ScanResult {
  /** Merged, sorted `[start, end)` pairs of matched bytes, flattened. */
  ranges: number[];
  /**
   * Where the bytes that could still begin a match start: a suffix that is a prefix of some
   * pattern, or a pattern whose candidate is cut off by the end of the input. Equals the input's
   * length when nothing could. Always `input.length` when `final`.
   */
  undecidedFrom: number;
}

export interface PatternMatcher {
  /** The longest pattern's length. */
  readonly maxLength: number;
  readonly patternCount: number;
  scan(input: Uint8Array, final: boolean): ScanResult;
}

export function createPatternMatcher(patterns: readonly Uint8Array[]): PatternMatcher {
  const pats = patterns.filter((p) => p.length > 0);
  const anchors = pats.map((p) => p.subarray(0, Math.min(ANCHOR, p.length)));

  // Byte classes: 0 for bytes no anchor holds.
  const cls = new Uint8Array(256);
  let classes = 1;
  for (const a of anchors) for (const b of a) if (cls[b] === 0) cls[b] = classes++;

  // The trie (sparse while building).
  const next: Int32Array[] = [new Int32Array(classes).fill(-1)];
  const depthOf: number[] = [0];
  const ends: number[][] = [[]];
  anchors.forEach((a, p) => {
    let s = 0;
    for (const b of a) {
      const c = cls[b] as number;
      let t = (next[s] as Int32Array)[c] as number;
      if (t === -1) {
        t = next.length;
        next.push(new Int32Array(classes).fill(-1));
        depthOf.push((depthOf[s] as number) + 1);
        ends.push([]);
        (next[s] as Int32Array)[c] = t;
      }
      s = t;
    }
    (ends[s] as number[]).push(p);
  });

  // Breadth first: failure links, DFA completion, and each state's anchors (its own and its
  // failure chain's).
  const n = next.length;
  const fail = new Int32Array(n);
  const order: number[] = [0];
  for (let c = 0; c < classes; c++) {
    const t = (next[0] as Int32Array)[c] as number;
    if (t === -1) (next[0] as Int32Array)[c] = 0;
    else {
      fail[t] = 0;
      order.push(t);
    }
  }
  for (let i = 1; i < order.length; i++) {
    const s = order[i] as number;
    const row = next[s] as Int32Array;
    const f = fail[s] as number;
    (ends[s] as number[]).push(...(ends[f] as number[]));
    for (let c = 0; c < classes; c++) {
      const t = row[c] as number;
      const viaFail = (next[f] as Int32Array)[c] as number;
      if (t === -1) row[c] = viaFail;
      else {
        fail[t] = viaFail;
        order.push(t);
      }
    }
  }

  // Renumber: states without anchors first, then those with; premultiply by the class count.
  const plain = order.filter((s) => (ends[s] as number[]).length === 0);
  const hitting = order.filter((s) => (ends[s] as number[]).length > 0);
  const renumbered = new Int32Array(n);
  [...plain, ...hitting].forEach((s, i) => {
    renumbered[s] = i;
  });
  const firstHit = plain.length * classes;
  const delta = new Int32Array(n * classes);
  const depth = new Uint8Array(n);
  const hits: Int32Array[] = new Array(n);
  for (let s = 0; s < n; s++) {
    const r = renumbered[s] as number;
    const row = next[s] as Int32Array;
    for (let c = 0; c < classes; c++) delta[r * classes + c] = (renumbered[row[c] as number] as number) * classes;
    depth[r] = depthOf[s] as number;
    hits[r] = Int32Array.from(ends[s] as number[]);
  }
  const start = (renumbered[0] as number) * classes;
  const lengths = Int32Array.from(pats, (p) => p.length);
  const anchorLengths = Int32Array.from(anchors, (a) => a.length);
  const maxLength = pats.reduce((m, p) => Math.max(m, p.length), 0);

  const matcher: PatternMatcher = {
    maxLength,
    patternCount: pats.length,
    scan(input, final) {
      const ranges: number[] = [];
      let undecidedFrom = input.length;
      const len = input.length;
      let s = start;
      for (let i = 0; i < len; i++) {
        s = delta[s + (cls[input[i] as number] as number)] as number;
        if (s < firstHit) continue;
        const candidates = hits[s / classes] as Int32Array;
        for (let k = 0; k < candidates.length; k++) {
          const p = candidates[k] as number;
          const from = i + 1 - (anchorLengths[p] as number);
          const to = from + (lengths[p] as number);
          const agrees = rest(input, pats[p] as Uint8Array, anchorLengths[p] as number, from, Math.min(to, len));
          if (!agrees) continue;
          if (to <= len) ranges.push(from, to);
          // Cut off by the end of the input, and what is there agrees: the next chunk decides.
          else if (!final && from < undecidedFrom) undecidedFrom = from;
        }
      }
      if (!final) undecidedFrom = Math.min(undecidedFrom, len - (depth[s / classes] as number));
      return { ranges: normalize(ranges), undecidedFrom };
    },
  };
  // Run every path of scan once before real input does. Without this the optimizing compiler
  // sees a match path that never ran, compiles it as "never", and the first real match throws
  // the whole loop back to the interpreter for the rest of the input (measured: 2-4× slower on
  // 1 MiB inputs with a few matches).
  if (pats.length > 0) {
    const sample = Buffer.concat(pats.flatMap((p) => [Buffer.from(" "), p]));
    matcher.scan(sample, true);
    matcher.scan(sample.subarray(0, sample.length - 1), false);
  }
  return matcher;
}

/** Does `input[from + anchor, until)` agree with `pattern` after its anchor? */
function rest(input: Uint8Array, pattern: Uint8Array, anchor: number, from: number, until: number): boolean {
  for (let j = from + anchor; j < until; j++) if (input[j] !== pattern[j - from]) return false;
  return true;
}

/**
 * Sorts the ranges by start and merges those that overlap. Touching ones stay apart: a stream
 * finds the second of two back-to-back occurrences in a later chunk as often as not, and one-shot
 * and streamed output must be the same.
 */
function normalize(ranges: number[]): number[] {
  if (ranges.length <= 2) return ranges;
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < ranges.length; i += 2) pairs.push([ranges[i] as number, ranges[i + 1] as number]);
  pairs.sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  for (const [from, to] of pairs) {
    const last = out.length - 1;
    if (last > 0 && from < (out[last] as number)) out[last] = Math.max(out[last] as number, to);
    else out.push(from, to);
  }
  return out;
}
