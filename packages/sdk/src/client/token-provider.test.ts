import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { AzureOpenAI } from "openai";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { nextEvent } from "../../test-support/client/events.js";
import { FakeKeyward } from "../../test-support/client/fake-keyward.js";
import { ManualClock } from "../../test-support/client/manual-clock.js";
import { UnknownCredentialError } from "../errors.js";
import { Keyward } from "./keyward.js";
import type { ConnectOptions } from "./options.js";

const T0 = Date.parse("2030-01-01T00:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();

let fake: FakeKeyward;
const clients: Keyward[] = [];

async function connect(extra: Partial<ConnectOptions> = {}): Promise<Keyward> {
  const kw = await Keyward.connect({ url: fake.url, token: fake.token, ...extra });
  clients.push(kw);
  return kw;
}

/** No event stream and no polling in reach: only what the token helpers fetch themselves. */
async function quietClient(clock: ManualClock): Promise<Keyward> {
  fake.eventsStatus = 404;
  return connect({ clock, pollIntervalMs: 1e9 });
}

beforeEach(async () => {
  fake = await new FakeKeyward().start();
  fake.set("azure", "tok-1", { expires_at: iso(T0 + 3_600_000) });
  fake.set("static", "sk-static");
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((kw) => kw.close()));
  await fake.stop();
});

describe("tokenProvider", () => {
  it("answers the held token while it is valid, without a request", async () => {
    const clock = new ManualClock(T0);
    const kw = await quietClient(clock);
    const before = fake.requests.length;
    expect(await kw.tokenProvider("azure")()).toBe("tok-1");
    expect(fake.requests.length).toBe(before);
  });

  it("asks the server with ?since before answering an expired token", async () => {
    const clock = new ManualClock(T0);
    const kw = await quietClient(clock);
    const cursor = String(fake.cursor);
    fake.set("azure", "tok-2", { expires_at: iso(T0 + 7_200_000) });
    clock.advance(3_600_000);
    expect(await kw.tokenProvider("azure")()).toBe("tok-2");
    expect(fake.requestsTo("/v1/credentials").at(-1)!.query.get("since")).toBe(cursor);
    expect(kw.get("azure")).toBe("tok-2");
  });

  it("refreshes within the margin before expiry, and still answers the valid token if the server is down", async () => {
    const clock = new ManualClock(T0);
    const kw = await quietClient(clock);
    clock.advance(3_600_000 - 10_000); // 10 s left
    fake.set("azure", "tok-2", { expires_at: iso(T0 + 7_200_000) });
    expect(await kw.tokenProvider("azure")()).toBe("tok-2");

    clock.advance(3_600_000 - 10_000); // tok-2 has 10 s left
    await fake.stop();
    expect(await kw.tokenProvider("azure")()).toBe("tok-2");
  });

  it("never answers an expired token: credential_expired when Keyward has no newer one", async () => {
    const clock = new ManualClock(T0);
    const kw = await quietClient(clock);
    clock.advance(3_600_000);
    await expect(kw.tokenProvider("azure")()).rejects.toMatchObject({ code: "credential_expired" });
    await fake.stop();
    await expect(kw.tokenProvider("azure")()).rejects.toMatchObject({ code: "credential_expired" });
  });

  it("get throws credential_expired for an expired token instead of returning it", async () => {
    const clock = new ManualClock(T0);
    const kw = await quietClient(clock);
    clock.advance(3_599_999);
    expect(kw.get("azure")).toBe("tok-1");
    clock.advance(1);
    expect(() => kw.get("azure")).toThrow(expect.objectContaining({ code: "credential_expired" }));
    expect(kw.get("static")).toBe("sk-static");
  });

  it("reports a credential the server says it cannot serve as an error event", async () => {
    const kw = await connect();
    await fake.waitForStreams(1);
    const reported = nextEvent(kw, "error");
    fake.unavailable = {
      azure: { code: "credential_unavailable", message: "azure: its token could not be refreshed" },
    };
    fake.set("static", "sk-static-2");
    expect(await reported).toMatchObject({ code: "credential_unavailable", message: expect.stringContaining("azure") });
  });

  it("rejects an unknown name with UnknownCredentialError", async () => {
    const kw = await connect();
    await expect(kw.tokenProvider("nope")()).rejects.toBeInstanceOf(UnknownCredentialError);
  });
});

describe("tokenCredential", () => {
  it("answers {token, expiresOnTimestamp} in the shape of @azure/core-auth", async () => {
    const clock = new ManualClock(T0);
    const kw = await quietClient(clock);
    expect(await kw.tokenCredential("azure").getToken("https://cognitiveservices.azure.com/.default")).toEqual({
      token: "tok-1",
      expiresOnTimestamp: T0 + 3_600_000,
      tokenType: "Bearer",
    });
    // A static value has no expiry: it is reported as valid for 5 minutes, so callers ask again.
    expect(await kw.tokenCredential("static").getToken([])).toEqual({
      token: "sk-static",
      expiresOnTimestamp: T0 + 300_000,
      tokenType: "Bearer",
    });
  });
});

describe("openai's AzureOpenAI with azureADTokenProvider", () => {
  let azure: Server;
  const seen: string[] = [];

  beforeEach(async () => {
    seen.length = 0;
    azure = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization}`);
      req.resume();
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id: "chatcmpl-1",
          object: "chat.completion",
          created: 0,
          model: "gpt-4o",
          choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: "hi" } }],
        }),
      );
    });
    await new Promise<void>((resolve) => azure.listen(0, "127.0.0.1", resolve));
  });

  afterEach(async () => {
    azure.closeAllConnections();
    await new Promise((resolve) => azure.close(resolve));
  });

  it("sends the token held by Keyward, and the rotated one after a rotation", async () => {
    const kw = await connect();
    await fake.waitForStreams(1);
    const client = new AzureOpenAI({
      endpoint: `http://127.0.0.1:${(azure.address() as AddressInfo).port}`,
      apiVersion: "2024-10-21",
      deployment: "gpt-4o",
      azureADTokenProvider: kw.tokenProvider("azure"),
      maxRetries: 0,
    });
    const ask = () =>
      client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hello" }] });

    expect((await ask()).choices[0]!.message.content).toBe("hi");
    const rotated = nextEvent(kw, "change");
    fake.set("azure", "tok-2", { expires_at: iso(Date.now() + 3_600_000) });
    await rotated;
    await ask();
    expect(seen).toEqual([
      "POST /openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21 Bearer tok-1",
      "POST /openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21 Bearer tok-2",
    ]);
  });
});
