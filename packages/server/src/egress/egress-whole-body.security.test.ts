import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentWithKey, grant, putCredential } from "../../test-support/egress/agents.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { WHOLE_BODY_MAX_BYTES } from "./egress-proxy.js";

const SECRET = "sk-whole-Hq3vN8xR2tL5wZ0mK4pB7yJ1cF9dG6sA";
const MARKER = "[redacted]";

/**
 * `GET /body/{n}`: n bytes of declared length, the secret at the very end, written in two pieces
 * cut inside the secret (the second only once the first has left), so the redactor must join them.
 * `GET /stream/{n}`: the same body without a length (chunked).
 */
function startUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const m = /^\/(body|stream)\/(\d+)$/.exec(req.url ?? "");
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    const n = Number(m[2]);
    const body = Buffer.from("a".repeat(n - SECRET.length) + SECRET, "latin1");
    const cut = n - Math.floor(SECRET.length / 2);
    res.writeHead(200, {
      "content-type": "text/plain",
      ...(m[1] === "body" ? { "content-length": String(n) } : {}),
    });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    res.write(body.subarray(0, cut), () => res.end(body.subarray(cut)));
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}

/** The raw answer as the agent's client gets it: status, headers, body bytes. */
function call(
  kw: TestServer,
  key: string,
  path: string,
  method = "GET",
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(kw.url);
    const req = http.request(
      { hostname, port, path, method, headers: { authorization: `Bearer ${key}` }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

let kw: TestServer;
let up: Awaited<ReturnType<typeof startUpstream>>;
let key: string;

beforeAll(async () => {
  up = await startUpstream();
  kw = await startTestServer();
  key = await agentWithKey(kw, "whole");
  await putCredential(kw, "wapi", SECRET, { base_url: up.url });
  await grant(kw, "whole", [{ name: "wapi", mode: "inject" }]);
});
afterAll(async () => {
  await kw?.close();
  await up?.close();
});

describe("egress: a short response of known length is redacted whole and sent with its length", () => {
  it.each([
    ["the shortest such body (the secret alone)", SECRET.length],
    ["a small body", 200],
    ["a body of exactly the bound", WHOLE_BODY_MAX_BYTES],
  ])("%s: the secret cut across two chunks is redacted; Content-Length is the redacted body's", async (_name, n) => {
    const res = await call(kw, key, `/egress/wapi/body/${n}`);
    expect(res.status).toBe(200);
    const text = res.body.toString("latin1");
    expect(text).not.toContain(SECRET);
    expect(text).toBe(`${"a".repeat(n - SECRET.length)}${MARKER}`);
    expect(res.headers["content-length"]).toBe(String(res.body.length));
    expect(res.headers["transfer-encoding"]).toBeUndefined();
    expect(res.headers["x-request-id"]).toBeTruthy();
  });

  it("one byte over the bound streams (chunked) and is still redacted", async () => {
    const n = WHOLE_BODY_MAX_BYTES + 1;
    const res = await call(kw, key, `/egress/wapi/body/${n}`);
    expect(res.status).toBe(200);
    expect(res.body.toString("latin1")).toBe(`${"a".repeat(n - SECRET.length)}${MARKER}`);
    expect(res.headers["transfer-encoding"]).toBe("chunked");
  });

  it("a response without a length streams and is redacted", async () => {
    const res = await call(kw, key, "/egress/wapi/stream/300");
    expect(res.status).toBe(200);
    expect(res.body.toString("latin1")).toBe(`${"a".repeat(300 - SECRET.length)}${MARKER}`);
  });

  it("HEAD gets the headers and no body", async () => {
    const res = await call(kw, key, "/egress/wapi/body/200", "HEAD");
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(0);
  });
});
