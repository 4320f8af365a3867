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
 *
 * Cost bounds (a secret's shape is chosen by whoever sets it, and an upstream chooses the text):
 * comparing each candidate from scratch costs O(text × pattern) when both repeat (`aaaa…` against
 * a 64 KiB secret of `a`: minutes). So each pattern remembers how far the text is known to agree
 * with its last candidate, and a later candidate inside that stretch is decided from the pattern's
 * own self-overlap (its Z-array, computed once) instead of rereading the text: every text byte is
 * compared at most once per pattern, plus one failed comparison per candidate. A pattern's
 * overlapping occurrences are merged as they are found, so a text that matches at every offset
 * yields one range, not one per offset.
 */

const ANCHOR = 8;
/** At most this much pattern text (but at least one pattern) runs through the warm-up scan. */
const WARM_UP_BYTES = 16 * 1024;

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
  /** `alphabet[b]` is 1 when some pattern holds byte `b`: a match holds no other byte. */
  readonly alphabet: Uint8Array;
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
  const alphabet = new Uint8Array(256);
  for (const p of pats) for (let i = 0; i < p.length; i++) alphabet[p[i] as number] = 1;

  // Z-arrays are built on first need: only a pattern met again within its own length needs one.
  const zs: Array<Int32Array | undefined> = new Array(pats.length);
  const count = pats.length;
  // Per scan, per pattern: the last candidate that was read (the text agrees with the pattern on
  // [lastFrom, reach)), and the open range of overlapping occurrences not yet pushed.
  const lastFrom = new Int32Array(count);
  const reach = new Int32Array(count);
  const openFrom = new Int32Array(count);
  const openTo = new Int32Array(count);

  const matcher: PatternMatcher = {
    maxLength,
    patternCount: count,
    alphabet,
    scan(input, final) {
      const ranges: number[] = [];
      let undecidedFrom = input.length;
      const len = input.length;
      lastFrom.fill(-1);
      reach.fill(0);
      openFrom.fill(-1);
      let s = start;
      for (let i = 0; i < len; i++) {
        s = delta[s + (cls[input[i] as number] as number)] as number;
        if (s < firstHit) continue;
        const candidates = hits[s / classes] as Int32Array;
        for (let k = 0; k < candidates.length; k++) {
          const p = candidates[k] as number;
          const from = i + 1 - (anchorLengths[p] as number);
          const to = from + (lengths[p] as number);
          const until = Math.min(to, len);
          const agreed = agreement(input, pats[p] as Uint8Array, p, from, until, anchorLengths[p] as number);
          if (agreed < until) continue;
          if (to <= len) {
            if (openFrom[p] !== -1 && from < (openTo[p] as number)) openTo[p] = to;
            else {
              if (openFrom[p] !== -1) ranges.push(openFrom[p] as number, openTo[p] as number);
              openFrom[p] = from;
              openTo[p] = to;
            }
          }
          // Cut off by the end of the input, and what is there agrees: the next chunk decides.
          else if (!final && from < undecidedFrom) undecidedFrom = from;
        }
      }
      for (let p = 0; p < count; p++) if (openFrom[p] !== -1) ranges.push(openFrom[p] as number, openTo[p] as number);
      if (!final) undecidedFrom = Math.min(undecidedFrom, len - (depth[s / classes] as number));
      return { ranges: mergeRanges(ranges), undecidedFrom };
    },
  };

  /**
   * Where the text starting at `from` first disagrees with pattern `p` (or `until` if it does
   * not before it). The anchor is known to agree. Text already read for an earlier candidate of
   * `p` is not read again: on it the text equals the pattern shifted, so the pattern's Z-array
   * says how far the new candidate agrees.
   */
  function agreement(
    input: Uint8Array,
    pattern: Uint8Array,
    p: number,
    from: number,
    until: number,
    anchor: number,
  ): number {
    let j = from + anchor;
    const known = reach[p] as number;
    const last = lastFrom[p] as number;
    if (last !== -1 && from < known) {
      zs[p] ??= zArray(pattern);
      const same = (zs[p] as Int32Array)[from - last] as number; // pattern[shift..] agrees with pattern[0..same)
      if (from + same < known) return from + same; // the text there is pattern[shift+same] ≠ pattern[same]
      j = Math.max(j, known);
    }
    for (; j < until; j++) if (input[j] !== pattern[j - from]) break;
    lastFrom[p] = from;
    reach[p] = j;
    return j;
  }
  // Run every path of scan once before real input does. Without this the optimizing compiler
  // sees a match path that never ran, compiles it as "never", and the first real match throws
  // the whole loop back to the interpreter for the rest of the input (measured: 2-4× slower on
  // 1 MiB inputs with a few matches).
  // The shortest patterns, up to a budget (none if even the shortest is longer): a sample of every
  // (possibly 64 KiB) pattern costs more than the warming saves when they all match at every
  // offset (a secret of `aaaa…`), and does so in the interpreter.
  if (pats.length > 0) {
    const parts: Uint8Array[] = [];
    let budget = WARM_UP_BYTES;
    for (const p of [...pats].sort((a, b) => a.length - b.length)) {
      if (p.length > budget) break;
      parts.push(Buffer.from(" "), p);
      budget -= p.length;
    }
    if (parts.length > 0) {
      const sample = Buffer.concat(parts);
      matcher.scan(sample, true);
      matcher.scan(sample.subarray(0, sample.length - 1), false);
    }
  }
  return matcher;
}

/** z[k]: the length of the longest common prefix of the pattern and its suffix from k (z[0] = length). */
export function zArray(pattern: Uint8Array): Int32Array {
  const n = pattern.length;
  const z = new Int32Array(n);
  if (n === 0) return z;
  z[0] = n;
  let l = 0;
  let r = 0;
  for (let k = 1; k < n; k++) {
    let v = k < r ? Math.min(r - k, z[k - l] as number) : 0;
    while (k + v < n && pattern[v] === pattern[k + v]) v++;
    z[k] = v;
    if (k + v > r) {
      l = k;
      r = k + v;
    }
  }
  return z;
}

/**
 * Sorts the ranges by start and merges those that overlap. Touching ones stay apart: a stream
 * finds the second of two back-to-back occurrences in a later chunk as often as not, and one-shot
 * and streamed output must be the same.
 */
export function mergeRanges(ranges: number[]): number[] {
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
