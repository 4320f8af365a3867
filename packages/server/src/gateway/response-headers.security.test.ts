import { describe, expect, it } from "vitest";
import { forwardResponseHeaders, responseHeaders } from "./proxy.js";

/** Header pairs as undici hands them over: raw bytes, names as the upstream wrote them. */
const raw = (...pairs: string[]) => pairs.map((p) => Buffer.from(p, "latin1"));

function forwarded(pairs: Buffer[], ours: Record<string, string> = {}) {
  const out: string[] = [];
  const hasLength = forwardResponseHeaders(pairs, ours, out);
  return { out, hasLength };
}

describe("the upstream's response headers the caller sees", () => {
  it("drops hop-by-hop headers and those Connection names, as the object form does", () => {
    const pairs = raw(
      "Content-Type",
      "text/plain",
      "Connection",
      "X-Internal, keep-alive",
      "X-Internal",
      "upstream secret detail",
      "Keep-Alive",
      "timeout=5",
      "Transfer-Encoding",
      "chunked",
      "Upgrade",
      "h2c",
      "X-Kept",
      "1",
    );
    const { out, hasLength } = forwarded(pairs);
    expect(out).toEqual(["content-type", "text/plain", "x-kept", "1"]);
    expect(hasLength).toBe(false);
    expect(responseHeaders(pairs)).toEqual({ "content-type": "text/plain", "x-kept": "1" });
  });

  it("Keyward's own headers replace an upstream's of the same name", () => {
    const { out } = forwarded(raw("X-Request-Id", "forged", "RateLimit-Remaining", "999999", "Content-Length", "2"), {
      "ratelimit-remaining": "4",
      "x-request-id": "kw-1",
    });
    expect(out).toEqual(["content-length", "2", "ratelimit-remaining", "4", "x-request-id", "kw-1"]);
  });

  it("keeps repeated names as separate lines, and names that are Object.prototype's", () => {
    const { out, hasLength } = forwarded(
      raw("Set-Cookie", "a=1", "Set-Cookie", "b=2", "Constructor", "x", "Content-Length", "5"),
      { "x-request-id": "kw-2" },
    );
    expect(out).toEqual([
      "set-cookie",
      "a=1",
      "set-cookie",
      "b=2",
      "constructor",
      "x",
      "content-length",
      "5",
      "x-request-id",
      "kw-2",
    ]);
    expect(hasLength).toBe(true);
  });

  it("a Content-Length the Connection header names is gone, and not reported as declared", () => {
    const { out, hasLength } = forwarded(raw("Connection", "content-length", "Content-Length", "5", "X-A", "1"));
    expect(out).toEqual(["x-a", "1"]);
    expect(hasLength).toBe(false);
  });
});
