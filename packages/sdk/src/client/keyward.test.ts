// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${credentials.<name>}` placeholders are what these tests are about
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { nextEvent } from "../../test-support/client/events.js";
import { FakeKeyward } from "../../test-support/client/fake-keyward.js";
import { KeywardError, UnknownCredentialError } from "../errors.js";
import { Keyward } from "./keyward.js";

let fake: FakeKeyward;
const clients: Keyward[] = [];

async function connect(extra: Partial<Parameters<typeof Keyward.connect>[0]> = {}): Promise<Keyward> {
  const kw = await Keyward.connect({ url: fake.url, token: fake.token, ...extra });
  clients.push(kw);
  return kw;
}

beforeEach(async () => {
  fake = await new FakeKeyward().start();
  fake.set("openai", "sk-one");
  fake.set("db_password", "hunter2");
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((kw) => kw.close()));
  await fake.stop();
});

describe("Keyward.connect", () => {
  it("loads every granted credential in one request, with the agent's token", async () => {
    const kw = await connect();
    const loads = fake.requestsTo("/v1/credentials");
    expect(loads).toHaveLength(1);
    expect(loads[0]!.headers.authorization).toBe(`Bearer ${fake.token}`);
    expect(loads[0]!.query.has("since")).toBe(false);
    expect(kw.get("openai")).toBe("sk-one");
    expect(kw.get("db_password")).toBe("hunter2");
  });

  it("keeps a path prefix of the URL (Keyward behind a reverse proxy)", async () => {
    const seen: string[] = [];
    const kw = await connect({
      url: `${fake.url}/keyward`,
      fetch: (input, init) => {
        seen.push(new URL(String(input)).pathname);
        return fetch(String(input).replace("/keyward/", "/"), init);
      },
    });
    expect(kw.get("openai")).toBe("sk-one");
    expect(seen[0]).toBe("/keyward/v1/credentials");
  });

  it("takes the token from a function, asked before each request", async () => {
    let calls = 0;
    const kw = await connect({
      token: async () => {
        calls++;
        return fake.token;
      },
    });
    expect(kw.get("openai")).toBe("sk-one");
    expect(calls).toBeGreaterThanOrEqual(1);
  });

  it("fails with the server's code when the key is refused", async () => {
    const err = await Keyward.connect({ url: fake.url, token: "kwk_wrong" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeywardError);
    expect(err).toMatchObject({ code: "invalid_key", status: 401, requestId: "req_fake" });
    expect((err as Error).message).not.toContain("kwk_wrong");
  });
});

describe("get", () => {
  it("throws UnknownCredentialError for a name the agent cannot read", async () => {
    const kw = await connect();
    expect(() => kw.get("stripe")).toThrow(UnknownCredentialError);
    expect(() => kw.get("stripe")).toThrow(/"stripe" is not readable/);
  });

  it("answers from memory: no request, whatever the number of calls", async () => {
    let fetches = 0;
    const kw = await connect({
      fetch: (input, init) => {
        fetches++;
        return fetch(input, init);
      },
    });
    await fake.waitForStreams(1);
    const before = fetches;
    for (let i = 0; i < 10_000; i++) kw.get("openai");
    expect(fetches).toBe(before);
  });
});

describe("freshness through the event stream", () => {
  it("a rotation reaches the client: change event, new value, only the changed name fetched", async () => {
    const kw = await connect();
    await fake.waitForStreams(1);
    const cursor = String(fake.cursor);
    const changed = nextEvent(kw, "change");
    const version = fake.set("openai", "sk-two");
    expect(await changed).toEqual({ name: "openai", version });
    expect(kw.get("openai")).toBe("sk-two");
    expect(kw.get("db_password")).toBe("hunter2");
    const deltas = fake.requestsTo("/v1/credentials").filter((r) => r.query.get("since") === cursor);
    expect(deltas.length).toBeGreaterThanOrEqual(1);
  });

  it("an answer behind the stream is asked again: another worker or replica had not applied the change yet", async () => {
    // The stream's server sent the event; the fetch it caused reached a server that was still
    // behind (here: two answers of "nothing changed"). The client asks again until it catches up.
    let behind = 0;
    let armed = false;
    const kw = await connect({
      fetch: (input, init) => {
        const url = new URL(String(input));
        if (armed && behind < 2 && url.pathname === "/v1/credentials" && url.searchParams.has("since")) {
          behind++;
          return Promise.resolve(new Response(null, { status: 304 }));
        }
        return fetch(input, init);
      },
    });
    await fake.waitForStreams(1);
    armed = true;
    const changed = nextEvent(kw, "change");
    const version = fake.set("openai", "sk-two");
    expect(await changed).toEqual({ name: "openai", version });
    expect(kw.get("openai")).toBe("sk-two");
    expect(behind).toBe(2);
  });

  it("a new grant appears and a removal makes get throw", async () => {
    const kw = await connect();
    await fake.waitForStreams(1);
    const added = nextEvent(kw, "change");
    fake.set("stripe", "sk_live_x");
    expect(await added).toEqual({ name: "stripe", version: 1 });
    expect(kw.get("stripe")).toBe("sk_live_x");

    const removed = nextEvent(kw, "removed");
    fake.remove("stripe");
    expect(await removed).toEqual({ name: "stripe" });
    expect(() => kw.get("stripe")).toThrow(UnknownCredentialError);
  });

  it("a listener that throws stops neither the client nor the other listeners", async () => {
    const kw = await connect();
    await fake.waitForStreams(1);
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    // vitest installs its own handler; ours records the listener's error instead of failing the run.
    const previous = process.listeners("uncaughtException");
    process.removeAllListeners("uncaughtException");
    process.on("uncaughtException", onUncaught);
    try {
      kw.on("change", () => {
        throw new Error("listener bug");
      });
      const changed = nextEvent(kw, "change");
      fake.set("openai", "sk-three");
      await changed;
      await new Promise((resolve) => setImmediate(resolve));
      expect(uncaught).toEqual([new Error("listener bug")]);
      expect(kw.get("openai")).toBe("sk-three");
    } finally {
      process.off("uncaughtException", onUncaught);
      for (const l of previous) process.on("uncaughtException", l);
    }
  });
});

describe("resolve", () => {
  it("replaces placeholders deep inside a copy, also within longer strings", async () => {
    const kw = await connect();
    const input = {
      llm: { apiKey: "${credentials.openai}", retries: 3 },
      dsn: "postgres://app:${credentials.db_password}@db:5432/app",
      list: ["${credentials.openai}", { nested: ["x-${credentials.db_password}-${credentials.openai}"] }],
      untouched: "${credentials}",
    };
    const out = kw.resolve(input);
    expect(out).toEqual({
      llm: { apiKey: "sk-one", retries: 3 },
      dsn: "postgres://app:hunter2@db:5432/app",
      list: ["sk-one", { nested: ["x-hunter2-sk-one"] }],
      untouched: "${credentials}",
    });
    expect(input.llm.apiKey).toBe("${credentials.openai}");
  });

  it("throws UnknownCredentialError for an unknown name", async () => {
    const kw = await connect();
    expect(() => kw.resolve({ a: ["${credentials.nope}"] })).toThrow(UnknownCredentialError);
  });
});

describe("close", () => {
  it("stops the event stream and makes get throw `closed`", async () => {
    const kw = await connect();
    await fake.waitForStreams(1);
    await kw.close();
    await kw.close();
    expect(() => kw.get("openai")).toThrow(expect.objectContaining({ code: "closed" }));
    await fake.waitForNoStreams();
    expect(fake.streams).toBe(0);
  });

  it("a signal passed to connect closes the client when aborted", async () => {
    const ctrl = new AbortController();
    const kw = await connect({ signal: ctrl.signal });
    ctrl.abort();
    await kw.close();
    expect(() => kw.get("openai")).toThrow(expect.objectContaining({ code: "closed" }));
  });
});
