import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { type SeenRequest, startUpstream } from "../../test-support/upstream.js";
import { type ApiErrorBody, readJson } from "../../test-support/wire.js";

// X-Forwarded-For counts only from peers in KEYWARD_TRUSTED_PROXIES (here: loopback, i.e. the test).
let kw: TestServer;
let up: Awaited<ReturnType<typeof startUpstream>>;
let secret: string;

beforeAll(async () => {
  up = await startUpstream();
  kw = await startTestServer({ KEYWARD_TRUSTED_PROXIES: "127.0.0.1/32,::1/128" });
  await kw.admin("POST", "/agents", { name: "echo", upstream: up.url });
  await kw.admin("POST", "/consumers", { name: "c" });
  const created = await kw.admin("POST", "/keys", {
    owner: "consumer:c",
    scopes: ["agent:echo"],
    ip_allow: ["10.0.0.0/8"],
  });
  secret = created.body.secret;
});
afterAll(async () => {
  await kw?.close();
  await up?.close();
});

const call = (xff?: string) =>
  fetch(`${kw.url}/agents/echo/x`, { headers: { "x-api-key": secret, ...(xff ? { "x-forwarded-for": xff } : {}) } });

describe("trusted proxies", () => {
  it("believes X-Forwarded-For from a trusted peer", async () => {
    expect((await call("10.1.2.3")).status).toBe(200);
    // The peer itself (127.0.0.1) is not in the allowlist.
    expect((await call()).status).toBe(403);
  });

  it("takes the rightmost address that is not a trusted proxy", async () => {
    // A client may write anything at the left; the hop our trusted proxy appended is what counts.
    const spoofed = await call("10.1.2.3, 192.168.7.7");
    expect(spoofed.status).toBe(403);
    expect((await readJson<ApiErrorBody>(spoofed)).error.code).toBe("ip_denied");
    expect((await call("192.168.7.7, 10.1.2.3, 127.0.0.1")).status).toBe(200);
  });

  it("passes the chain on to the upstream with the real peer appended once", async () => {
    const res = await call("10.1.2.3");
    const seen = await readJson<SeenRequest>(res);
    expect(seen.headers["x-forwarded-for"]).toBe("10.1.2.3, 127.0.0.1");
  });

  it("refuses garbage in X-Forwarded-For instead of trusting it", async () => {
    expect((await call("not-an-ip")).status).toBe(403);
  });
});
