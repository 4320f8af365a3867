// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${credentials.<name>}` placeholders are what these tests are about
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { nextEvent } from "../../test-support/client/events.js";
import { FakeKeyward } from "../../test-support/client/fake-keyward.js";
import { ManualClock } from "../../test-support/client/manual-clock.js";
import { tappedFetch } from "../../test-support/client/stream-tap.js";
import { KeywardError, StaleCredentialError } from "../errors.js";
import { Keyward } from "./keyward.js";
import type { ConnectOptions } from "./options.js";

let fake: FakeKeyward;
let dir: string;
const clients: Keyward[] = [];
const CACHE_KEY = Buffer.alloc(32, 9);

async function connect(extra: Partial<ConnectOptions> = {}): Promise<Keyward> {
  const kw = await Keyward.connect({ url: fake.url, token: fake.token, ...extra });
  clients.push(kw);
  return kw;
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "keyward-sdk-"));
  fake = await new FakeKeyward().start();
  fake.set("openai", "sk-one");
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((kw) => kw.close()));
  await fake.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("server down at connect", () => {
  it("fails with server_unreachable when there is no disk cache", async () => {
    await fake.stop();
    const err = await connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeywardError);
    expect(err).toMatchObject({ code: "server_unreachable" });
  });

  it("fails with server_unreachable when the cache file does not exist yet", async () => {
    await fake.stop();
    const err = await connect({ cacheFile: join(dir, "cache"), cacheKey: CACHE_KEY }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "server_unreachable", message: expect.stringContaining("no disk cache yet") });
  });

  it("starts from the disk cache, then catches up when the server is back", async () => {
    const cache = { cacheFile: join(dir, "cache"), cacheKey: CACHE_KEY, backoffBaseMs: 5, backoffCapMs: 20 };
    await (await connect(cache)).close(); // close waits for the cache write
    await fake.stop();

    const kw = await connect(cache);
    expect(kw.get("openai")).toBe("sk-one");

    const cursor = String(fake.cursor);
    fake.set("openai", "sk-two");
    const changed = nextEvent(kw, "change");
    await fake.start();
    expect(await changed).toEqual({ name: "openai", version: 2 });
    expect(kw.get("openai")).toBe("sk-two");
    // It resumed from the cached cursor: only what changed was transferred.
    expect(fake.requestsTo("/v1/credentials").some((r) => r.query.get("since") === cursor)).toBe(true);
  });

  it("refuses a disk cache older than maxStale", async () => {
    const clock = new ManualClock();
    const opts = { cacheFile: join(dir, "cache"), cacheKey: CACHE_KEY, maxStale: 60_000, clock };
    await (await connect(opts)).close();
    await fake.stop();
    clock.advance(60_000);
    const err = await connect(opts).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "server_unreachable", message: expect.stringContaining("older than maxStale") });
  });

  it("a cache just younger than maxStale is served until maxStale, then get throws", async () => {
    const clock = new ManualClock();
    const opts = { cacheFile: join(dir, "cache"), cacheKey: CACHE_KEY, maxStale: 60_000, clock };
    await (await connect(opts)).close();
    await fake.stop();
    clock.advance(59_000);
    const kw = await connect(opts);
    expect(kw.get("openai")).toBe("sk-one");
    clock.advance(1_000);
    expect(() => kw.get("openai")).toThrow(StaleCredentialError);
  });
});

describe("server killed while connected", () => {
  it("get keeps answering from memory, goes stale after maxStale, and recovers on contact", async () => {
    const clock = new ManualClock();
    let fetches = 0;
    const kw = await connect({
      clock,
      maxStale: 120_000,
      random: () => 0,
      fetch: (input, init) => {
        fetches++;
        return fetch(input, init);
      },
    });
    await fake.waitForStreams(1);
    const lost = nextEvent(kw, "error");
    await fake.stop();
    expect(await lost).toMatchObject({ code: "server_unreachable" });

    const before = fetches;
    for (let i = 0; i < 1000; i++) expect(kw.get("openai")).toBe("sk-one");
    expect(fetches).toBe(before); // no I/O on get, server or no server

    const staleEvent = nextEvent(kw, "error");
    clock.advance(119_999);
    expect(kw.get("openai")).toBe("sk-one");
    clock.advance(1);
    expect(() => kw.get("openai")).toThrow(StaleCredentialError);
    expect(() => kw.resolve({ k: "${credentials.openai}" })).toThrow(StaleCredentialError);
    // The first error after the advance may be a failed reconnect; the stale one follows.
    let event = await staleEvent;
    while (!(event instanceof StaleCredentialError)) event = await nextEvent(kw, "error");
    expect(event.lastContact).toBeLessThanOrEqual(clock.now() - 120_000);

    fake.set("openai", "sk-two");
    const changed = nextEvent(kw, "change");
    await fake.start();
    clock.advance(30_000); // the longest backoff: a reconnect is due
    await changed;
    expect(kw.get("openai")).toBe("sk-two");
  });
});

describe("event stream", () => {
  it("reconnects after a drop with Last-Event-ID and gets what changed meanwhile", async () => {
    const clock = new ManualClock();
    const kw = await connect({ clock, random: () => 0 });
    await fake.waitForStreams(1);
    const first = nextEvent(kw, "change");
    fake.set("openai", "sk-two");
    await first;
    const seenId = String(fake.cursor);

    const reconnectWait = clock.waitForTimer(0);
    fake.dropStreams();
    await reconnectWait;
    fake.set("openai", "sk-three"); // while the client is away
    const reconnect = fake.nextRequest("/v1/credentials/events");
    const changed = nextEvent(kw, "change");
    clock.advance(0);
    expect((await reconnect).headers["last-event-id"]).toBe(seenId);
    expect(await changed).toEqual({ name: "openai", version: 3 });
    expect(kw.get("openai")).toBe("sk-three");
  });

  it("treats a silent stream as dead and reconnects", async () => {
    fake.heartbeats = false;
    const clock = new ManualClock();
    const kw = await connect({ clock, random: () => 0, heartbeatTimeoutMs: 45_000 });
    await fake.waitForStreams(1);
    const failed = nextEvent(kw, "error");
    const reconnect = fake.nextRequest("/v1/credentials/events");
    clock.advance(44_999);
    expect(fake.requestsTo("/v1/credentials/events")).toHaveLength(1);
    clock.advance(1);
    expect(await failed).toMatchObject({ code: "event_stream_failed" });
    clock.advance(0);
    await reconnect;
  });

  it("falls back to polling with If-None-Match when /events answers 404, and returns to the stream", async () => {
    fake.eventsStatus = 404;
    const clock = new ManualClock();
    const pollArmed = clock.waitForTimer(15_000);
    const kw = await connect({ clock, pollIntervalMs: 15_000 });
    await pollArmed;

    const cursor = String(fake.cursor);
    const version = fake.set("openai", "sk-two");
    const changed = nextEvent(kw, "change");
    let armed = clock.waitForTimer(15_000);
    clock.advance(15_000);
    expect(await changed).toEqual({ name: "openai", version });
    expect(kw.get("openai")).toBe("sk-two");
    const delta = fake.requestsTo("/v1/credentials").at(-1)!;
    expect(delta.query.get("since")).toBe(cursor);
    expect(delta.headers["if-none-match"]).toMatch(/^"/);

    // Nothing changes: once the client holds the ETag of the empty delta, the server answers 304.
    for (let i = 0; i < 2; i++) {
      await armed;
      armed = clock.waitForTimer(15_000);
      const polled = fake.nextRequest("/v1/credentials");
      clock.advance(15_000);
      await polled;
    }
    expect(fake.requestsTo("/v1/credentials").at(-1)!.status).toBe(304);
    expect(kw.get("openai")).toBe("sk-two");

    // The stream is asked for again every 5 minutes; once it answers, polling stops.
    await armed;
    fake.eventsStatus = 200;
    const streamBack = fake.waitForStreams(1);
    clock.advance(300_000 - 45_000);
    await streamBack;
    await fake.nextRequest("/v1/credentials"); // the catch-up, sent once the stream was open
    expect(clock.pending()).not.toContain(15_000); // no poll timer any more
  });

  it("heartbeats count as contact: a quiet but live stream never goes stale", async () => {
    const clock = new ManualClock();
    const tap = tappedFetch();
    const kw = await connect({ clock, maxStale: 10_000, heartbeatTimeoutMs: 1e9, fetch: tap.fetch });
    await fake.waitForStreams(1);
    for (let i = 0; i < 3; i++) {
      clock.advance(9_000);
      await tap.chunks(2); // at least one heartbeat handled at the new time
    }
    expect(kw.get("openai")).toBe("sk-one"); // 27 s after connect, with maxStale 10 s
  });
});

/** The reconnect delays among all timers set (the others have distinct, known delays). */
const OTHER_TIMERS = new Set([7_777_777, 8_888_888, 60_000]);
const backoffDelays = (clock: ManualClock) => clock.log.filter((d) => !OTHER_TIMERS.has(d));

describe("backoff", () => {
  it("reconnects after base·2^n with full jitter, capped, and starts over after a success", async () => {
    const clock = new ManualClock();
    const tap = tappedFetch();
    const kw = await connect({
      clock,
      fetch: tap.fetch,
      random: () => 0.999,
      backoffBaseMs: 500,
      backoffCapMs: 30_000,
      pollIntervalMs: 7_777_777,
      heartbeatTimeoutMs: 8_888_888,
      maxStale: 1e12,
    });
    await fake.waitForStreams(1);
    await fake.nextRequest("/v1/credentials"); // the catch-up after the stream opened…
    await tap.settled(); // …handled: only the stream's reconnects remain to be timed
    let failed = nextEvent(kw, "error");
    await fake.stop();
    await failed;
    for (let i = 0; i < 7; i++) {
      failed = nextEvent(kw, "error");
      clock.advance(backoffDelays(clock).at(-1)!);
      await failed;
    }
    // floor(0.999 · min(30 000, 500 · 2^n)): nothing really waited, the clock was moved.
    expect(backoffDelays(clock)).toEqual([499, 999, 1998, 3996, 7992, 15984, 29970, 29970]);

    await fake.start();
    const chunks = tap.chunks(1);
    clock.advance(29_970);
    await chunks; // the new stream delivered data: a success
    failed = nextEvent(kw, "error");
    fake.dropStreams();
    await failed;
    expect(backoffDelays(clock).at(-1)).toBe(499);
  });
});
