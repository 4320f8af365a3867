import { foldPattern } from "./line-breaks.js";
import { createPatternMatcher } from "./pattern-matcher.js";
import { createScanner } from "./scanner.js";
import { secretEncodings } from "./secret-encodings.js";

/**
 * Removes secrets (and their raw, base64, base64url, hex, and URL-, form-, JSON- and HTML-escaped
 * forms) from text and byte streams: upstream responses at the egress proxy (SPEC §6), tool
 * results (§7, §8).
 *
 * Streaming: an occurrence may straddle chunks, so a stream holds back the bytes at the end of a
 * chunk that could begin one — about the longest pattern (more where it is escaped), and only
 * while they could. Output therefore follows input as closely as it safely can: a chunk that ends
 * with bytes no pattern begins with (an SSE event's blank line) goes out whole, at once. Nothing
 * else is buffered, so a response of any size streams in constant memory. A stream's output and
 * count are those of one pass over the whole input, however it is cut.
 */

export const DEFAULT_MARKER = "[redacted]";

type Scan = ReturnType<typeof createScanner>;

/** Held-back bytes up to this many are scanned again with every chunk (see push). */
const RESCAN_FREE = 256;
const EMPTY = Buffer.alloc(0);

export interface RedactionStream {
  /** Bytes of `chunk` (and of earlier held-back bytes) that are safe to send, redacted. */
  push(chunk: Uint8Array): Buffer;
  /** The held-back rest, redacted; the stream is done. */
  end(): Buffer;
  /** Occurrences redacted so far. */
  readonly count: number;
}

export interface Redactor {
  /** False when there is nothing to redact (no secrets): callers may skip the work. */
  readonly active: boolean;
  /** How many byte patterns the secrets expanded to. */
  readonly patternCount: number;
  /**
   * The longest pattern, in bytes as matched (decoded, line breaks removed): a stream holds back
   * at most one byte less of them, plus the line breaks and escapes they were written with (and,
   * once over 256 bytes are held, up to as many again while it gathers small chunks).
   */
  readonly maxPatternLength: number;
  /** The shortest pattern: shorter input cannot hold a secret (0 when inactive). */
  readonly minPatternLength: number;
  redact(input: Uint8Array): { output: Buffer; count: number };
  redactString(input: string): { output: string; count: number };
  stream(): RedactionStream;
}

/**
 * Replaces every occurrence of the secrets — raw, base64 (any alignment), base64url, hex, and
 * with any characters URL-, JSON- or HTML-escaped — with a marker, in one pass or as a stream that also catches a secret
 * split across chunks. Compiles once per set of secrets; reuse the result (compiling costs far
 * more than a scan).
 *
 * @example
 * ```ts
 * import { createRedactor } from "@keyward/sdk/redaction";
 * const redactor = createRedactor([apiKey]);
 * const { output, count } = redactor.redactString(toolOutput); // "[redacted]" where the key was
 * const stream = redactor.stream();
 * for await (const chunk of child.stdout) process.stdout.write(stream.push(chunk));
 * process.stdout.write(stream.end());
 * ```
 */
export function createRedactor(secrets: readonly string[], opts: { marker?: string } = {}): Redactor {
  const patterns = new Map<string, Buffer>();
  for (const s of secrets) {
    for (const encoded of secretEncodings(s)) {
      const p = foldPattern(encoded);
      patterns.set(p.toString("latin1"), p);
    }
  }
  const matcher = createPatternMatcher([...patterns.values()]);
  const scan = createScanner(matcher);
  const marker = Buffer.from(opts.marker ?? DEFAULT_MARKER, "utf8");
  const active = matcher.patternCount > 0;
  let minPatternLength = active ? Number.POSITIVE_INFINITY : 0;
  for (const p of patterns.values()) if (p.length > 0) minPatternLength = Math.min(minPatternLength, p.length);

  const redact = (input: Uint8Array) => {
    const data = toBuffer(input);
    if (!active) return { output: data, count: 0 };
    const { ranges } = scan(data, true);
    return { output: assemble(data, ranges, data.length, marker), count: ranges.length / 2 };
  };

  return {
    active,
    patternCount: matcher.patternCount,
    maxPatternLength: matcher.maxLength,
    minPatternLength,
    redact,
    redactString(input) {
      if (!active) return { output: input, count: 0 };
      // Tool results hold many short strings (keys, ids, flags): they skip the encoding and scan.
      // A UTF-16 unit is at least one UTF-8 byte, so only strings shorter in units need measuring.
      if (input.length < minPatternLength && Buffer.byteLength(input, "utf8") < minPatternLength) {
        return { output: input, count: 0 };
      }
      const { output, count } = redact(Buffer.from(input, "utf8"));
      return { output: count === 0 ? input : output.toString("utf8"), count };
    },
    stream: () => createStream(scan, marker, active),
  };
}

function createStream(scan: Scan, marker: Buffer, active: boolean): RedactionStream {
  let pending: Buffer = EMPTY;
  // How many bytes at the start of `pending` belong to an occurrence whose marker already went
  // out: an occurrence found later that overlaps them extends that marker, as in one pass.
  let carry = 0;
  let unscanned: Buffer[] = [];
  let unscannedBytes = 0;
  let count = 0;
  let ended = false;
  const redactUpTo = (data: Buffer, final: boolean): Buffer => {
    const scanned = scan(data, final);
    const ranges = withCarry(scanned.ranges, carry);
    const cut = final ? data.length : scanned.undecidedFrom;
    // Every occurrence that starts before the cut has been found; one that starts later is found
    // again with the next chunk. An occurrence found across the cut is redacted up to it, and the
    // rest of it is carried.
    let emitted = 0;
    let carried = 0;
    for (let i = 0; i < ranges.length; i += 2) {
      if ((ranges[i] as number) >= cut) break;
      emitted += 2;
      carried = Math.max(0, (ranges[i + 1] as number) - cut);
    }
    const continued = carry > 0;
    // Cut at 0 (nothing decided yet): the carried occurrence, merged, is carried on whole.
    if (continued && emitted === 0) carried = ranges[1] as number;
    count += emitted / 2 - (continued && emitted > 0 ? 1 : 0);
    carry = carried;
    pending = data.subarray(cut);
    return assemble(data, emitted === ranges.length ? ranges : ranges.slice(0, emitted), cut, marker, continued);
  };
  return {
    get count() {
      return count;
    },
    push(chunk) {
      if (ended) throw new Error("redaction stream already ended");
      const input = toBuffer(chunk);
      if (!active) return input;
      if (pending.length === 0) return redactUpTo(input, false);
      // Held-back bytes are scanned again with each chunk. With a long secret (up to its longest
      // encoding held back) and small chunks, that would cost the held bytes per chunk: so once
      // more than RESCAN_FREE bytes are held, chunks are gathered until they add up to as much.
      // Each byte is then scanned at most about twice; only output that could be a secret waits.
      unscanned.push(input);
      unscannedBytes += input.length;
      if (pending.length > RESCAN_FREE && unscannedBytes < pending.length) return EMPTY;
      const data = Buffer.concat([pending, ...unscanned]);
      unscanned = [];
      unscannedBytes = 0;
      return redactUpTo(data, false);
    },
    end() {
      if (ended) return EMPTY;
      ended = true;
      const data = unscanned.length === 0 ? pending : Buffer.concat([pending, ...unscanned]);
      pending = EMPTY;
      unscanned = [];
      if (!active || data.length === 0) return data;
      return redactUpTo(data, true);
    },
  };
}

/** The ranges with `[0, carry)` joined in: merged with those that overlap it, first in any case. */
function withCarry(ranges: number[], carry: number): number[] {
  if (carry === 0) return ranges;
  let end = carry;
  let i = 0;
  for (; i < ranges.length && (ranges[i] as number) < end; i += 2) end = Math.max(end, ranges[i + 1] as number);
  return [0, end, ...ranges.slice(i)];
}

/**
 * `data[0, cut)` with each range (clipped to the cut) replaced by the marker; no copy when there is
 * no range. When `continued`, the first range's marker went out with an earlier chunk.
 */
function assemble(data: Buffer, ranges: readonly number[], cut: number, marker: Buffer, continued = false): Buffer {
  if (ranges.length === 0) return cut === data.length ? data : data.subarray(0, cut);
  const parts: Buffer[] = [];
  let at = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    parts.push(data.subarray(at, ranges[i] as number));
    if (i > 0 || !continued) parts.push(marker);
    at = Math.min(ranges[i + 1] as number, cut);
  }
  parts.push(data.subarray(at, cut));
  return Buffer.concat(parts);
}

function toBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}
