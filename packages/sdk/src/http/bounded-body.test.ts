import { describe, expect, it } from "vitest";
import { ResponseTooLargeError } from "../errors.js";
import { readBoundedBytes, readBoundedJson } from "./bounded-body.js";

const LIMIT = { what: "the answer", limit: "responseBytes", maxBytes: 1000 };

/** A body of `size` bytes (Infinity: endless) in 100-byte chunks, counting what was pulled. */
function body(size: number, headers: Record<string, string> = {}) {
  const state = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(ctrl) {
        if (state.pulled >= size) return ctrl.close();
        state.pulled += 100;
        ctrl.enqueue(new Uint8Array(100).fill(0x20));
      },
      cancel() {
        state.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { res: new Response(stream, { headers }), state };
}

describe("readBoundedBytes", () => {
  it("reads a body of exactly the limit", async () => {
    const { res } = body(1000);
    expect((await readBoundedBytes(res, LIMIT)).byteLength).toBe(1000);
  });

  it("refuses one chunk past the limit, cancels the body and reads no further", async () => {
    const { res, state } = body(Number.POSITIVE_INFINITY);
    const err = await readBoundedBytes(res, LIMIT).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResponseTooLargeError);
    expect(err).toMatchObject({ code: "response_too_large", limit: "responseBytes", maxSize: 1000 });
    expect(state.cancelled).toBe(true);
    expect(state.pulled).toBe(1100);
  });

  it("refuses a declared Content-Length past the limit before reading anything", async () => {
    const { res, state } = body(5000, { "content-length": "5000" });
    await expect(readBoundedBytes(res, LIMIT)).rejects.toBeInstanceOf(ResponseTooLargeError);
    expect(state.pulled).toBe(0);
    expect(state.cancelled).toBe(true);
  });

  it("does not believe a Content-Length within the limit (a lying proxy, a compressed body)", async () => {
    const { res, state } = body(Number.POSITIVE_INFINITY, { "content-length": "10" });
    await expect(readBoundedBytes(res, LIMIT)).rejects.toBeInstanceOf(ResponseTooLargeError);
    expect(state.pulled).toBe(1100);
  });

  it("parses JSON within the limit; an empty body is not JSON", async () => {
    expect(await readBoundedJson(new Response('{"a":1}'), LIMIT)).toEqual({ a: 1 });
    await expect(readBoundedJson(new Response(null), LIMIT)).rejects.toBeInstanceOf(SyntaxError);
  });
});
