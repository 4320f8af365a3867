import { describe, expect, it } from "vitest";
import { forwardRequestHeaders, forwardResponseHeaders, passThroughHeaders, responseHeaders } from "./proxy.js";

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

describe("the caller's request headers the upstream sees", () => {
  const extra = { authorization: "Bearer upstream.jwt", requestId: "kw-3", rate: undefined, peerIp: "10.0.0.7" };
  /** name → every value sent under it. */
  const sent = (list: string[]) => {
    const m = new Map<string, string[]>();
    for (let i = 0; i < list.length; i += 2)
      m.set(list[i] as string, [...(m.get(list[i] as string) ?? []), list[i + 1] as string]);
    return m;
  };

  it("never the caller's credentials, hop-by-hop headers or what Connection names; one value for what Keyward sets", () => {
    const h = {
      host: "keyward.example",
      authorization: "Bearer kwk_caller_secret",
      "x-api-key": "kwk_caller_secret",
      connection: "x-private",
      "x-private": "hop",
      "keep-alive": "timeout=5",
      "x-request-id": "forged",
      "x-forwarded-for": "203.0.113.9",
      "x-forwarded-host": "evil.example",
      "x-forwarded-proto": "https",
      expect: "100-continue",
      accept: "application/json",
      cookie: "a=1",
    };
    const m = sent(forwardRequestHeaders(h, extra));
    expect(Object.fromEntries(m)).toEqual({
      accept: ["application/json"],
      cookie: ["a=1"],
      "x-forwarded-for": ["203.0.113.9, 10.0.0.7"],
      "x-forwarded-host": ["keyward.example"],
      "x-forwarded-proto": ["http"],
      authorization: ["Bearer upstream.jwt"],
      "x-request-id": ["kw-3"],
    });
    // The object form egress uses applies the same rule to the caller's headers.
    expect(Object.keys(passThroughHeaders(h)).sort()).toEqual(
      ["accept", "cookie", "x-forwarded-host", "x-forwarded-proto"].sort(),
    );
  });

  it("without Host, a caller's X-Forwarded-Host passes as before; repeated values stay repeated", () => {
    const m = sent(forwardRequestHeaders({ "x-forwarded-host": "a.example", "set-cookie": ["a=1", "b=2"] }, extra));
    expect(m.get("x-forwarded-host")).toEqual(["a.example"]);
    expect(m.get("set-cookie")).toEqual(["a=1", "b=2"]);
  });
});
