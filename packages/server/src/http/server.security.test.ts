import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, TEST_ADMIN_TOKEN, type TestServer } from "../../test-support/server.js";
import { ConfigError, loadConfig } from "../config.js";

// Slow clients (slowloris): a request whose headers or body never finish must not hold a socket
// for ever. The timeouts are short here; the defaults are in config.ts and docs/operations.md.
const TIMEOUT_MS = 500;
let kw: TestServer;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "keyward-http-"));
  const configFile = join(dir, "keyward.yaml");
  writeFileSync(
    configFile,
    `http:\n  headers_timeout_ms: ${TIMEOUT_MS}\n  request_timeout_ms: ${TIMEOUT_MS}\n  keep_alive_timeout_ms: 5000\n`,
  );
  kw = await startTestServer({}, { configFile });
});
afterAll(async () => {
  await kw?.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Opens a connection, writes `head`, then one more byte of `drip` every 50 ms for as long as
 * the server keeps the socket. Resolves on close with what the server answered and how long the
 * connection lived.
 */
function slowClient(head: string, drip: string): Promise<{ answer: string; ms: number; dripped: number }> {
  const { hostname, port } = new URL(kw.url);
  return new Promise((resolve) => {
    const started = performance.now();
    let answer = "";
    let dripped = 0;
    const socket: Socket = connect(Number(port), hostname, () => {
      socket.write(head);
    });
    const timer = setInterval(() => {
      if (socket.writable) socket.write(drip[dripped++ % drip.length] ?? "x");
    }, 50);
    socket.on("data", (chunk) => {
      answer += chunk.toString("latin1");
    });
    socket.on("error", () => {}); // a reset after the cut is part of being cut
    socket.on("close", () => {
      clearInterval(timer);
      resolve({ answer, ms: performance.now() - started, dripped });
    });
  });
}

describe("http server: slow clients are cut", () => {
  it("cuts a client that sends its headers, then dribbles the body slower than request_timeout_ms", async () => {
    const head =
      "POST /admin/v1/keys HTTP/1.1\r\nhost: keyward\r\n" +
      `authorization: Bearer ${TEST_ADMIN_TOKEN}\r\ncontent-type: application/json\r\n` +
      "content-length: 100000\r\n\r\n";
    const r = await slowClient(head, " ");
    expect(r.answer.startsWith("HTTP/1.1 408")).toBe(true);
    expect(r.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(r.ms).toBeLessThan(TIMEOUT_MS * 6);
    expect(r.dripped).toBeGreaterThan(3); // it was still sending when cut
  });

  it("cuts a client that never finishes its headers", async () => {
    const r = await slowClient("GET /healthz HTTP/1.1\r\nhost: keyward\r\nx-slow: ", "a");
    expect(r.answer.startsWith("HTTP/1.1 408")).toBe(true);
    expect(r.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(r.ms).toBeLessThan(TIMEOUT_MS * 6);
  });

  it("still serves a client that sends in time", async () => {
    const res = await fetch(`${kw.url}/healthz`);
    expect(res.status).toBe(200);
  });
});

describe("http timeouts: configuration", () => {
  it("defaults to finite timeouts and refuses a headers timeout longer than the request timeout", () => {
    expect(loadConfig({ env: {} }).http).toEqual({
      headers_timeout_ms: 60_000,
      request_timeout_ms: 120_000,
      keep_alive_timeout_ms: 65_000,
    });
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "http:\n  headers_timeout_ms: 5000\n  request_timeout_ms: 1000\n");
    expect(() => loadConfig({ configFile: file })).toThrow(ConfigError);
    expect(() => loadConfig({ configFile: file })).toThrow(/headers_timeout_ms must not exceed/);
    writeFileSync(file, "http:\n  request_timeout_ms: 0\n");
    expect(() => loadConfig({ configFile: file })).toThrow(ConfigError);
  });
});
