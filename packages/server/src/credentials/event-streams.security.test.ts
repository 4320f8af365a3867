import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { openSse, type SseClient } from "../../test-support/sse-client.js";
import { DEFAULT_STREAM_LIMITS } from "./credential-events.js";

/**
 * Issue 18, finding 6: 20,000 event streams from one agent key took every file descriptor the
 * server had. Streams are capped per key and per source address (defaults, no configuration here);
 * past a cap a stream is refused with 429 and the rest of the server keeps answering.
 */

let kw: TestServer;
const keys: string[] = [];
let open: SseClient[] = [];

const stream = (key: string, address?: string) =>
  openSse(`${kw.url}/v1/credentials/events`, {
    authorization: `Bearer ${key}`,
    ...(address ? { "x-forwarded-for": address } : {}),
  });

async function openMany(n: number, key: string, address?: string): Promise<void> {
  const streams = await Promise.all(Array.from({ length: n }, () => stream(key, address)));
  open.push(...streams);
  expect(streams.map((s) => s.status)).toEqual(streams.map(() => 200));
}

async function expectRefused(key: string, address: string | undefined, why: RegExp): Promise<void> {
  const refused = await stream(key, address);
  refused.close();
  expect(refused.status).toBe(429);
  expect(refused.headers["retry-after"]).toMatch(/^[1-9][0-9]*$/);
  const body = JSON.parse(refused.raw());
  expect(body.error.code).toBe("rate_limited");
  expect(body.error.message).toMatch(why);
}

/** The server learns of a closed stream when its socket closes; ask until the slot is free. */
async function openOnceFree(key: string, address?: string): Promise<SseClient> {
  for (let i = 0; i < 200; i++) {
    const s = await stream(key, address);
    if (s.status === 200) return s;
    s.close();
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("the slot was never freed");
}

beforeAll(async () => {
  kw = await startTestServer({ KEYWARD_TRUSTED_PROXIES: "127.0.0.1/32,::1/128" });
  await kw.admin("POST", "/agents", { name: "alice", upstream: "http://127.0.0.1:9" });
  for (let i = 0; i < 8; i++) {
    keys.push((await kw.admin("POST", "/keys", { owner: "agent:alice", scopes: [] })).body.secret);
  }
});
afterEach(() => {
  for (const s of open) s.close();
  open = [];
});
afterAll(async () => {
  await kw?.close();
});

describe("event streams per key and per address", () => {
  it("refuses the stream past the per-key cap with 429 and Retry-After; closing one frees a slot", async () => {
    const key = keys[0] as string;
    await openMany(DEFAULT_STREAM_LIMITS.perKey, key, "10.0.0.1");
    await expectRefused(key, "10.0.0.1", /with this key/);
    // The key's cap holds from any address.
    await expectRefused(key, "10.0.0.2", /with this key/);

    // The server stays responsive while the cap is full: health, the gateway, other keys.
    expect((await fetch(`${kw.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${kw.url}/agents/alice/x`)).status).toBe(401);
    await openMany(1, keys[1] as string, "10.0.0.1");

    (open.shift() as SseClient).close();
    open.push(await openOnceFree(key, "10.0.0.1"));
    await expectRefused(key, "10.0.0.1", /with this key/);
  });

  it("caps one address across several keys; another address is not affected", async () => {
    const { perKey, perAddress } = DEFAULT_STREAM_LIMITS;
    let left = perAddress;
    // Keys no other test used: their streams are surely gone.
    const fresh = keys.slice(3);
    for (const key of fresh) {
      const n = Math.min(perKey, left);
      if (n === 0) break;
      await openMany(n, key, "10.0.0.9");
      left -= n;
    }
    const unused = fresh[fresh.length - 1] as string;
    expect(left).toBe(0);
    await expectRefused(unused, "10.0.0.9", /from this address/);
    await openMany(1, unused, "10.0.0.10");
    expect((await fetch(`${kw.url}/healthz`)).status).toBe(200);
  });

  it("a refused or abandoned stream leaves no slot taken", async () => {
    const key = keys[2] as string;
    // Streams closed by their clients, opened and refused many times over.
    for (let round = 0; round < 3; round++) {
      await openMany(DEFAULT_STREAM_LIMITS.perKey, key, "10.0.0.20");
      await expectRefused(key, "10.0.0.20", /with this key/);
      for (const s of open) s.close();
      open = [await openOnceFree(key, "10.0.0.20")];
      for (const s of open) s.close();
      open = [];
    }
    await openMany(1, key, "10.0.0.20");
  });
});
