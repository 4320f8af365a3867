import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../packages/server/test-support/server.js";
import { readJson } from "../../packages/server/test-support/wire.js";
import { startExample } from "./start.mjs";

/** LangServe's (FastAPI's) 422 body: one entry per invalid part of the request. */
interface LangServeError {
  detail: { loc: string[]; msg: string; type: string }[];
}

let kw: TestServer;
let example: Awaited<ReturnType<typeof startExample>>;

beforeAll(async () => {
  kw = await startTestServer();
  example = await startExample({ keywardUrl: kw.url, adminToken: kw.adminToken });
});
afterAll(async () => {
  await example?.close();
  await kw?.close();
});

/** A request through the gateway as the demo caller; the body is sent exactly as given. */
async function call<T = unknown>(path: string, body: string, method = "POST") {
  const res = await fetch(`${kw.url}/agents/${path}`, {
    method,
    headers: { authorization: `Bearer ${example.callerKey.secret}`, "content-type": "application/json" },
    ...(method === "GET" ? {} : { body }),
  });
  return { status: res.status, body: await readJson<T>(res) };
}

describe("multi-agent example: bad input gets a 4xx with an error body, never a 500", () => {
  it("workflow: malformed JSON, a missing or oversized question, a body over 64 KiB, an unknown route", async () => {
    expect(await call("workflow/run", "{")).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_request" } },
    });
    expect(await call("workflow/run", "{}")).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_request" } },
    });
    expect(await call("workflow/run", JSON.stringify({ question: 42 }))).toMatchObject({ status: 400 });
    expect(await call("workflow/run", JSON.stringify({ question: "q".repeat(501) }))).toMatchObject({ status: 400 });
    const huge = JSON.stringify({ question: "q", pad: "x".repeat(70 * 1024) });
    expect(await call("workflow/run", huge)).toMatchObject({
      status: 413,
      body: { error: { code: "payload_too_large" } },
    });
    expect(await call("workflow/other", "{}")).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
  });

  it("research and tools, called directly by a caller allowed to: the same, tools in LangServe's 422 shape", async () => {
    expect(await call("research/search", "{")).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_request" } },
    });
    expect(await call("research/search", JSON.stringify({ query: "" }))).toMatchObject({ status: 400 });
    expect(await call("research/search", "{}", "GET")).toMatchObject({ status: 404 });
    const notJson = await call<LangServeError>("tools/invoke", "{");
    expect(notJson.status).toBe(422);
    expect(notJson.body.detail[0]).toMatchObject({ loc: ["body", "body"] });
    const noText = await call<LangServeError>("tools/invoke", JSON.stringify({ input: { text: 1 } }));
    expect(noText.status).toBe(422);
    expect(noText.body.detail[0]).toMatchObject({ loc: ["body", "input"] });
    expect(await call("tools/stream", "{}")).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
  });
});
