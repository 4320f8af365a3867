import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentWithKey, egressCall, grant, putCredential } from "../../test-support/egress/agents.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";

// An upstream written in another language sends the injected secret back escaped by its own
// encoder (Go's encoding/json, Python's urllib, an HTML template), a few bytes per write so each
// escape is cut across chunks: the agent could decode every form, so egress must redact every
// one (issue 11, finding 4). The forms are written from the encoders' rules, not the redactor's.
const SECRET = `sk&live<2026>/"q'+x=y~z`;

const hex = (c: string) => c.charCodeAt(0).toString(16);
const FORMS: Record<string, string> = {
  goJson: JSON.stringify(SECRET)
    .slice(1, -1)
    .replace(/[&<>]/g, (c) => `\\u00${hex(c)}`),
  jsonEveryUnitLower: [...SECRET].map((c) => `\\u${hex(c).padStart(4, "0")}`).join(""),
  pythonQuote: SECRET.replace(/[^A-Za-z0-9_.~/-]/g, (c) => `%${hex(c).toUpperCase()}`),
  pythonQuotePlusLower: SECRET.replace(/[^A-Za-z0-9_.~-]/g, (c) => `%${hex(c)}`),
  htmlNamed: SECRET.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string,
  ),
  htmlDecimalLeadingZeros: [...SECRET].map((c) => `&#00${c.charCodeAt(0)};`).join(""),
};

describe("egress: a secret escaped by another language's encoder is redacted", () => {
  let kw: TestServer;
  let upstream: http.Server;
  let key: string;
  const received: string[] = [];

  beforeAll(async () => {
    upstream = http.createServer(async (req, res) => {
      const secret = String(req.headers.authorization ?? "").replace(/^Bearer /, "");
      received.push(secret);
      const body = Object.entries(secret === SECRET ? FORMS : { received: secret })
        .map(([name, form]) => `<p data-name="${name}">${form}</p>\n`)
        .join("");
      res.writeHead(200, { "content-type": "text/html" });
      for (let at = 0; at < body.length; at += 3) {
        res.write(body.slice(at, at + 3));
        await new Promise((r) => setImmediate(r));
      }
      res.end();
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    kw = await startTestServer();
    key = await agentWithKey(kw, "bot");
    await putCredential(kw, "escaped", SECRET, {
      base_url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    });
    await grant(kw, "bot", [{ name: "escaped", mode: "inject" }]);
  });
  afterAll(async () => {
    await kw?.close();
    upstream?.closeAllConnections();
    await new Promise((r) => upstream?.close(r));
  });

  it("in a body streamed a few bytes at a time", async () => {
    const res = await egressCall(kw, key, "escaped/page");
    expect(res.status).toBe(200);
    const text = await res.text();
    // The upstream did get the secret (and so sent every form back).
    expect(received).toEqual([SECRET]);
    expect(text).toBe(
      Object.keys(FORMS)
        .map((name) => `<p data-name="${name}">[redacted]</p>\n`)
        .join(""),
    );
  });
});
