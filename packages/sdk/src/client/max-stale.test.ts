import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeKeyward } from "../../test-support/client/fake-keyward.js";
import { ManualClock } from "../../test-support/client/manual-clock.js";
import { tappedFetch } from "../../test-support/client/stream-tap.js";
import { type KeywardError, StaleCredentialError } from "../errors.js";
import { Keyward } from "./keyward.js";

// maxStale promises an error once Keyward has been *unreachable* that long. A stream may be
// quieter than that (one heartbeat every 15 s against a maxStale of 10 s): quiet is not unreachable.
let fake: FakeKeyward;
const clients: Keyward[] = [];

beforeEach(async () => {
  fake = await new FakeKeyward().start();
  fake.set("openai", "sk-one");
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((kw) => kw.close()));
  await fake.stop();
});

async function connectQuiet(clock: ManualClock, tap: ReturnType<typeof tappedFetch>) {
  const errors: KeywardError[] = [];
  const kw = await Keyward.connect({
    url: fake.url,
    token: fake.token,
    clock,
    maxStale: 10_000,
    // The stream is never given up for silence here: only staleness is under test.
    heartbeatTimeoutMs: 1e9,
    fetch: tap.fetch,
  });
  clients.push(kw);
  kw.on("error", (e) => errors.push(e));
  await fake.waitForStreams(1);
  await fake.nextRequest("/v1/credentials"); // the catch-up after the stream opened
  await tap.settled();
  return { kw, errors };
}

describe("maxStale on a connected client", () => {
  it("a live stream quieter than maxStale never goes stale: the client asks Keyward itself", async () => {
    fake.heartbeats = false; // as if the server's heartbeat were longer than maxStale
    const clock = new ManualClock();
    const tap = tappedFetch();
    const { kw, errors } = await connectQuiet(clock, tap);
    const before = fake.requestsTo("/v1/credentials").length;

    for (let i = 0; i < 6; i++) {
      const asked = fake.nextRequest("/v1/credentials");
      clock.advance(5_000); // half of maxStale without a word
      expect((await asked).status).toBe(304); // a conditional request: nothing changed
      await tap.settled();
    }
    expect(kw.get("openai")).toBe("sk-one"); // 30 s of silence, with maxStale 10 s
    expect(errors).toEqual([]);
    // One question per half maxStale of silence, no more.
    expect(fake.requestsTo("/v1/credentials").length - before).toBe(6);
  });

  it("asks nothing while heartbeats arrive more often than half of maxStale", async () => {
    const clock = new ManualClock();
    const tap = tappedFetch();
    const { kw } = await connectQuiet(clock, tap);
    const before = fake.requestsTo("/v1/credentials").length;
    for (let i = 0; i < 6; i++) {
      clock.advance(4_000);
      await tap.chunks(2); // at least one heartbeat handled at the new time
    }
    expect(kw.get("openai")).toBe("sk-one");
    expect(fake.requestsTo("/v1/credentials").length).toBe(before);
  });

  it("still goes stale after maxStale when Keyward cannot answer (503), though its stream stays open", async () => {
    fake.heartbeats = false;
    const clock = new ManualClock();
    const tap = tappedFetch();
    const { kw, errors } = await connectQuiet(clock, tap);
    fake.credentialsStatus = 503; // the questions fail; the stream is still open and silent
    const first = fake.nextRequest("/v1/credentials");
    clock.advance(5_000);
    await first;
    await tap.settled();
    const second = fake.nextRequest("/v1/credentials");
    clock.advance(2_500);
    await second;
    await tap.settled();
    clock.advance(2_499);
    expect(kw.get("openai")).toBe("sk-one");
    clock.advance(1);
    expect(() => kw.get("openai")).toThrow(StaleCredentialError);
    expect(errors.at(-1)).toBeInstanceOf(StaleCredentialError);
  });
});
