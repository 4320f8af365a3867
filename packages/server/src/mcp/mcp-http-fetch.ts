/** Why an HTTP upstream's answer was refused; the upstream is then stopped. */
export type HttpViolation = "redirect" | "oversized";

export interface GuardedFetchOptions {
  /** The most one JSON-RPC message may take: a JSON body whole, or one SSE event. */
  maxMessageBytes: number;
  /** Called once per refused answer, before the fetch or the body read fails. */
  onViolation(why: HttpViolation): void;
  fetch?: typeof fetch;
}

/** Statuses whose Response cannot be rebuilt with a body. */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/**
 * The fetch the SDK's StreamableHTTPClientTransport gets for an HTTP upstream, carrying the
 * user's injected headers:
 * - redirects are never followed, not even within the origin (the SDK follows those; an older SDK
 *   followed any): the headers go to the configured URL and nowhere else, and a 3xx is a broken
 *   upstream, not a hop;
 * - a body is read through a byte counter: the SDK buffers a JSON answer whole and an SSE event
 *   until its blank line, so an upstream answering 1 GB (or one endless event) would take that
 *   much memory. Past `maxMessageBytes` in one message the body errors instead.
 * Nothing here puts a header value, a URL or upstream text into an error message.
 */
export function guardedFetch(opts: GuardedFetchOptions): typeof fetch {
  const base = opts.fetch ?? fetch;
  return async (input, init) => {
    const response = await base(input, { ...init, redirect: "manual" });
    if ((response.status >= 300 && response.status < 400) || response.type === "opaqueredirect") {
      await response.body?.cancel().catch(() => {});
      opts.onViolation("redirect");
      throw new Error("the upstream MCP server answered with a redirect; redirects are not followed");
    }
    if (response.body === null || NULL_BODY.has(response.status)) return response;
    const sse = (response.headers.get("content-type") ?? "").includes("text/event-stream");
    const limited = response.body.pipeThrough(
      messageLimit(opts.maxMessageBytes, sse, () => opts.onViolation("oversized")),
    );
    return new Response(limited, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

const LF = 10;
const CR = 13;

/**
 * Errors the stream once a message passes `max` bytes: the whole body for JSON, or the bytes since
 * the last event boundary (a blank line: LF LF, CR CR or CRLF CRLF) for SSE.
 */
function messageLimit(max: number, sse: boolean, onExceeded: () => void): TransformStream<Uint8Array, Uint8Array> {
  let size = 0;
  let lineLength = 0;
  let previous = -1;
  return new TransformStream({
    transform(chunk, controller) {
      if (!sse) {
        size += chunk.byteLength;
      } else {
        for (const byte of chunk) {
          if (byte === LF && previous === CR) {
            previous = byte;
            continue;
          }
          previous = byte;
          if (byte === LF || byte === CR) {
            if (lineLength === 0) size = 0;
            lineLength = 0;
          } else {
            lineLength++;
            size++;
          }
          if (size > max) break;
        }
      }
      if (size > max) {
        onExceeded();
        controller.error(new Error(`the upstream MCP server sent a message over ${max} bytes`));
        return;
      }
      controller.enqueue(chunk);
    },
  });
}
