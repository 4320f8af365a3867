import { describe, expect, it } from "vitest";
import { ApiError, createAdminClient, UnreachableError } from "./admin-client.js";

type Call = { url: string; init: RequestInit };

/** A fetch that records calls and answers from a script, one response per call. */
function scriptedFetch(responses: (() => Response)[]): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  const fake = async (input: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(input), init: init ?? {} });
    const next = responses.shift();
    if (!next) throw new Error("unexpected request");
    return next();
  };
  return { fetch: fake as typeof fetch, calls };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

describe("createAdminClient", () => {
  it("sends the token as a bearer and JSON bodies", async () => {
    const { fetch, calls } = scriptedFetch([() => json(201, { name: "a" })]);
    const client = createAdminClient({ url: "http://kw.test/", token: "t".repeat(40), fetch });
    expect(await client.request("POST", "/agents", { name: "a" })).toEqual({ name: "a" });
    expect(calls[0]!.url).toBe("http://kw.test/admin/v1/agents");
    const headers = calls[0]!.init.headers as Record<string, string>;
    expect(headers.authorization).toBe(`Bearer ${"t".repeat(40)}`);
    expect(headers["content-type"]).toBe("application/json");
    expect(calls[0]!.init.body).toBe('{"name":"a"}');
  });

  it("answers undefined for 204", async () => {
    const { fetch } = scriptedFetch([() => new Response(null, { status: 204 })]);
    const client = createAdminClient({ url: "http://kw.test", token: "t", fetch });
    expect(await client.request("DELETE", "/agents/a")).toBeUndefined();
  });

  it("follows next_cursor until the last page", async () => {
    const { fetch, calls } = scriptedFetch([
      () => json(200, { items: [1, 2], next_cursor: "c1" }),
      () => json(200, { items: [3], next_cursor: null }),
    ]);
    const client = createAdminClient({ url: "http://kw.test", token: "t", fetch });
    expect(await client.listAll("/keys", { owner: "consumer:a" })).toEqual({ items: [1, 2, 3], next_cursor: null });
    expect(calls.map((c) => c.url)).toEqual([
      "http://kw.test/admin/v1/keys?owner=consumer%3Aa",
      "http://kw.test/admin/v1/keys?owner=consumer%3Aa&cursor=c1",
    ]);
  });

  it("turns the error body into an ApiError", async () => {
    const { fetch } = scriptedFetch([
      () => json(409, { error: { code: "conflict", message: "agent a already exists", request_id: "r1" } }),
    ]);
    const client = createAdminClient({ url: "http://kw.test", token: "t", fetch });
    const err = await client.request("POST", "/agents", {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 409, code: "conflict", message: "agent a already exists", requestId: "r1" });
  });

  it("names the status when the error is not Keyward's", async () => {
    const { fetch } = scriptedFetch([() => new Response("<html>bad gateway</html>", { status: 502 })]);
    const client = createAdminClient({ url: "http://kw.test", token: "t", fetch });
    await expect(client.request("GET", "/agents")).rejects.toMatchObject({ code: "http_502" });
  });

  it("reports the underlying network reason", async () => {
    const refused = Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });
    const fetch = (async () => {
      throw refused;
    }) as typeof globalThis.fetch;
    const client = createAdminClient({ url: "http://127.0.0.1:9", token: "t", fetch });
    const err = await client.request("GET", "/agents").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnreachableError);
    expect((err as Error).message).toBe("cannot reach Keyward at http://127.0.0.1:9 (ECONNREFUSED)");
  });
});
