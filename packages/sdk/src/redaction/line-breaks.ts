/**
 * Matching that ignores line breaks. `env | base64` wraps its output every 76 characters, PEM and
 * MIME every 64 or 76, a log formatter wherever it likes: a secret's encoding is then cut by a
 * `\n` (or `\r\n`) at a place no fixed pattern could predict. So patterns are matched with CR and
 * LF removed from both sides, and what matched is mapped back to the original bytes, line breaks
 * inside included. The cost: a copy of inputs that hold a line break; the gain over patterns with
 * a break at every position: no blow-up in pattern count, any wrap width, any number of breaks.
 * (It also redacts a secret that merely continues on the next line: more redaction, never less.)
 */

const LF = 0x0a;
const CR = 0x0d;

export interface Folded {
  /** The input without its CR and LF bytes. */
  data: Buffer;
  /** Original positions of the removed bytes, ascending. */
  removed: number[];
}

/** The input without CR and LF, or `undefined` when it has none (the common case costs two searches). */
export function foldLineBreaks(input: Buffer): Folded | undefined {
  let nextLf = input.indexOf(LF);
  let nextCr = input.indexOf(CR);
  if (nextLf === -1 && nextCr === -1) return undefined;
  const removed: number[] = [];
  while (nextLf !== -1 || nextCr !== -1) {
    if (nextCr === -1 || (nextLf !== -1 && nextLf < nextCr)) {
      removed.push(nextLf);
      nextLf = input.indexOf(LF, nextLf + 1);
    } else {
      removed.push(nextCr);
      nextCr = input.indexOf(CR, nextCr + 1);
    }
  }
  const data = Buffer.allocUnsafe(input.length - removed.length);
  let at = 0;
  let from = 0;
  for (const r of removed) {
    if (r > from) at += input.copy(data, at, from, r);
    from = r + 1;
  }
  if (from < input.length) input.copy(data, at, from);
  return { data, removed };
}

/** A pattern as it is matched: without CR and LF. */
export function foldPattern(pattern: Buffer): Buffer {
  return foldLineBreaks(pattern)?.data ?? pattern;
}

/**
 * Maps ascending positions in the folded data back to the original: each position of a byte is
 * that byte's original position; `end` positions (exclusive) map to just after their last byte.
 */
export function createUnfolder(removed: readonly number[]) {
  let p = 0;
  let last = -1;
  /** Original position of the folded byte at `f`; calls must not go backwards. */
  const byteAt = (f: number): number => {
    if (f < last) p = 0;
    last = f;
    while (p < removed.length && (removed[p] as number) <= f + p) p++;
    return f + p;
  };
  return {
    byteAt,
    /** A `[start, end)` range of folded bytes as the original range (line breaks inside included). */
    range(start: number, end: number): [number, number] {
      const from = byteAt(start);
      return [from, byteAt(end - 1) + 1];
    },
  };
}
