import { describe, expect, it } from "vitest";
import { KeywardError } from "../errors.js";
import { Keyward } from "./keyward.js";
import type { ConnectOptions } from "./options.js";

const URL_ = "http://keyward.test";

/** A fetch answering `GET /v1/credentials` with `body` (and failing the event stream). */
function answering(status: number, body: string, headers: Record<string, string> = {}): typeof fetch {
  return async (input) =>
    String(input).includes("/events")
      ? new Response(null, { status: 404 })
      : new Response(body, { status, headers: { "content-type": "application/json", ...headers } });
}

/** Never answers; rejects when its signal aborts, like fetch. */
const hangingFetch: typeof fetch = (_input, init) =>
  new Promise((_, reject) => {
    const signal = init?.signal;
    if (signal?.aborted) reject(signal.reason);
    signal?.addEventListener("abort", () => reject(signal.reason));
  });

const connectWith = (fetchImpl: typeof fetch) =>
  Keyward.connect({ url: URL_, token: "kwk_x", fetch: fetchImpl }).catch((e: unknown) => e);

describe("Keyward.connect options", () => {
  const bad: [string, Partial<ConnectOptions>, RegExp][] = [
    ["a relative url", { url: "/keyward" }, /url must be an absolute http\(s\) URL/],
    ["another scheme", { url: "ftp://x" }, /url must be an absolute http\(s\) URL/],
    ["an empty token", { token: "" }, /token must be a non-empty string/],
    ["a negative maxStale", { maxStale: -1 }, /maxStale must be a positive number/],
    ["a maxStale under a second", { maxStale: 999 }, /maxStale must be at least 1000 milliseconds/],
    ["NaN pollIntervalMs", { pollIntervalMs: Number.NaN }, /pollIntervalMs must be a positive number/],
    ["a cacheFile without key", { cacheFile: "/tmp/x" }, /cacheFile and cacheKey go together/],
    ["a short cacheKey", { cacheFile: "/tmp/x", cacheKey: Buffer.alloc(16) }, /cacheKey must be 32 bytes/],
    [
      "a base64 cacheKey of 31 bytes",
      { cacheFile: "/tmp/x", cacheKey: Buffer.alloc(31).toString("base64") },
      /32 bytes/,
    ],
  ];
  it.each(bad)("refuses %s with a TypeError naming the setting", async (_, extra, message) => {
    const err = await Keyward.connect({ url: URL_, token: "kwk_x", ...extra } as ConnectOptions).catch((e) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toMatch(message);
  });

  it("accepts a base64 cacheKey of 32 bytes", async () => {
    const err = await Keyward.connect({
      url: URL_,
      token: "kwk_x",
      cacheFile: "/nonexistent/dir/cache",
      cacheKey: Buffer.alloc(32).toString("base64"),
      fetch: answering(403, '{"error":{"code":"forbidden","message":"no"}}'),
    }).catch((e) => e);
    expect(err).toMatchObject({ code: "forbidden", status: 403 });
  });
});

describe("Keyward.connect against a server answering nonsense", () => {
  it.each([
    ["not JSON", "<html>proxy error</html>"],
    ["no credentials object", '{"cursor":"1"}'],
    ["a value that is not a string", '{"credentials":{"a":{"value":1,"version":1}},"removed":[],"cursor":"1"}'],
    ["a version that is not an integer", '{"credentials":{"a":{"value":"v","version":"1"}},"removed":[],"cursor":"1"}'],
    ["an unreadable expires_at", '{"credentials":{"a":{"value":"v","version":1,"expires_at":"soon"}},"cursor":"1"}'],
    ["removed that is not a list", '{"credentials":{},"removed":"a","cursor":"1"}'],
    ["no cursor", '{"credentials":{},"removed":[]}'],
  ])("fails with invalid_response on %s", async (_, body) => {
    const err = await connectWith(answering(200, body));
    expect(err).toBeInstanceOf(KeywardError);
    expect(err).toMatchObject({ code: "invalid_response" });
  });

  it("a 403 carries the server's code and request id", async () => {
    const err = await connectWith(
      answering(403, '{"error":{"code":"scope_denied","message":"not an agent","request_id":"r1"}}'),
    );
    expect(err).toMatchObject({ code: "scope_denied", status: 403, requestId: "r1", message: "not an agent" });
  });

  it("an error without the §4 body still has a code: http_<status>", async () => {
    const err = await connectWith(answering(418, "teapot"));
    expect(err).toMatchObject({ code: "http_418", status: 418 });
  });

  it("a 503 is an outage (no cache configured: it fails, saying so)", async () => {
    const err = await connectWith(answering(503, '{"error":{"code":"store_unavailable","message":"db down"}}'));
    expect(err).toMatchObject({ code: "store_unavailable", status: 503 });
  });

  it("a server that never answers is given up after requestTimeoutMs", async () => {
    const hang = hangingFetch;
    const err = await Keyward.connect({ url: URL_, token: "kwk_x", fetch: hang, requestTimeoutMs: 20 }).catch((e) => e);
    expect(err).toMatchObject({ code: "server_unreachable", message: expect.stringContaining("timed out") });
  });

  it("an aborted signal cancels connect", async () => {
    const ctrl = new AbortController();
    const hang = hangingFetch;
    const pending = Keyward.connect({ url: URL_, token: "kwk_x", fetch: hang, signal: ctrl.signal }).catch((e) => e);
    ctrl.abort();
    expect(await pending).toMatchObject({ code: "closed" });
  });

  it("an unknown event name is refused by on()", async () => {
    const kw = await Keyward.connect({
      url: URL_,
      token: "kwk_x",
      fetch: answering(200, '{"credentials":{},"removed":[],"cursor":"0"}'),
    });
    expect(() => kw.on("toString" as "change", () => {})).toThrow(/unknown event/);
    await kw.close();
  });
});
