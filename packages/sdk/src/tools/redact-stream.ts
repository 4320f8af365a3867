import { Readable } from "node:stream";
import { TextDecoder } from "node:util";
import type { RedactionStream, Redactor } from "../redaction/index.js";
import { redactError, redactValue, type Tally } from "./redact-value.js";

/**
 * Streamed tool results: an AsyncIterable of strings or bytes, a web ReadableStream or a node
 * Readable comes back as the same kind of stream, redacted across chunk boundaries (a secret split
 * over two chunks is still found: the redaction stream holds back at most the longest pattern's
 * length minus one byte, and only while those bytes could begin a secret).
 */

/** How the wrapper learns that a stream ended, and how. */
/** Called once: `error` undefined when the stream ended (or the consumer stopped reading). */
export type StreamEnd = (tally: Tally, error: unknown) => void;

type Kind = "web" | "node" | "iterable";

/** Which stream kind `v` is, if any. Strings and arrays are values, not streams. */
export function streamKind(v: unknown): Kind | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  if (typeof ReadableStream !== "undefined" && v instanceof ReadableStream) return "web";
  if (v instanceof Readable) return "node";
  if (Symbol.asyncIterator in v) return "iterable";
  return undefined;
}

/**
 * `source` redacted. `signal` aborts reading (the tool's deadline): the stream then fails with
 * `signal.reason`. Errors the source throws are redacted like a tool's errors.
 */
export function redactStream(
  kind: Kind,
  source: AsyncIterable<unknown>,
  r: Redactor,
  signal: AbortSignal,
  end: StreamEnd,
): unknown {
  const objectMode = kind === "node" && (source as Readable).readableObjectMode;
  const gen = redactedChunks(source, r, signal, end);
  if (kind === "node") return Readable.from(gen, { objectMode });
  if (kind === "web") return toWebStream(gen);
  return gen;
}

async function* redactedChunks(
  source: AsyncIterable<unknown>,
  r: Redactor,
  signal: AbortSignal,
  end: StreamEnd,
): AsyncGenerator<unknown, void, undefined> {
  const tally: Tally = { count: 0 };
  let s: RedactionStream = r.stream();
  // The first chunk decides: text in, text out (a multi-byte character cut in two by what the
  // redaction stream held back is joined again), bytes in, bytes out.
  let decoder: TextDecoder | undefined;
  let decided = false;
  let finished = false;
  const it = source[Symbol.asyncIterator]();
  const stopSource = () => {
    // Not awaited: a source stuck in an await would keep `return` pending forever.
    void Promise.resolve()
      .then(() => it.return?.())
      .catch(() => {});
  };
  const flush = (): unknown[] => {
    const tail = s.end();
    tally.count += s.count;
    s = r.stream();
    const out: unknown[] = [];
    if (decoder) {
      const t = decoder.decode(tail);
      if (t !== "") out.push(t);
    } else if (tail.length > 0) out.push(tail);
    return out;
  };
  try {
    for (;;) {
      const step = await untilAborted(it.next(), signal);
      if (step.done) break;
      const chunk = step.value;
      if (typeof chunk === "string" || chunk instanceof Uint8Array) {
        if (!decided) {
          decided = true;
          if (typeof chunk === "string") decoder = new TextDecoder();
        }
        const out = s.push(typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk);
        if (out.length === 0) continue;
        if (decoder === undefined) yield out;
        else {
          const t = decoder.decode(out, { stream: true });
          if (t !== "") yield t;
        }
      } else {
        // An object chunk (e.g. an SDK's event): what was held back goes first, then the object.
        for (const t of flush()) yield t;
        yield redactValue(chunk, r, tally);
      }
    }
    for (const t of flush()) yield t;
    finished = true;
    end(tally, undefined);
  } catch (err) {
    finished = true;
    tally.count += s.count;
    stopSource();
    // The deadline's own reason (a ToolTimeoutError) holds no secret and keeps its class.
    const error =
      signal.aborted && err === signal.reason
        ? err
        : err instanceof Error
          ? redactError(err, r, tally)
          : redactValue(err, r, tally);
    end(tally, error);
    throw error;
  } finally {
    // The consumer stopped early (break, cancel): the source is told to stop too.
    if (!finished) {
      tally.count += s.count;
      stopSource();
      end(tally, undefined);
    }
  }
}

/** Settles like `p`, or rejects with `signal.reason` once it aborts: the deadline wins a race. */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

function toWebStream(gen: AsyncGenerator<unknown, void, undefined>): ReadableStream<unknown> {
  return new ReadableStream<unknown>({
    async pull(controller) {
      try {
        const step = await gen.next();
        if (step.done) controller.close();
        else controller.enqueue(step.value);
      } catch (err) {
        controller.error(err);
      }
    },
    async cancel() {
      await gen.return(undefined);
    },
  });
}
