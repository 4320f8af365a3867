import { gzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { nextEvent } from "../../test-support/client/events.js";
import { CHUNK, countingFetch, GiB, HostileServer } from "../../test-support/client/hostile-server.js";
import { KeywardError, ResponseTooLargeError } from "../errors.js";
import { DEFAULT_LIMITS } from "../http/limits.js";
import { Keyward } from "./keyward.js";
import { nodeFetch } from "./node-fetch.js";
import type { ConnectOptions } from "./options.js";

/*
 * Issue 18 finding 7: a broken or hostile server (or a proxy in its place) could make the SDK read
 * a body or an event-stream line without end. Each case pours up to 1 GiB, only as fast as the
 * client reads, and checks on both sides that the client stopped at its limit: the SDK took in at
 * most the limit and a chunk, and the server saw the connection cut long before 1 GiB.
 * The server side includes what the kernel's socket buffers held (loopback can grow a receive
 * buffer to 32 MiB here), hence its looser bound.
 */
const SOCKET_SLACK = 48 * 1024 * 1024;
const TOKEN = "kwk_hostiletest";

type CredentialsMode = "good" | "huge-with-length" | "huge-chunked" | "gzip-bomb";
type EventsMode = "none" | "good" | "endless-line" | "tiny-lines" | "big-event";

let credentialsMode: CredentialsMode;
let eventsMode: EventsMode;
let current: { value: string; version: number };
let server: HostileServer;
const clients: Keyward[] = [];
const gzipBomb = gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x20));

function page() {
  return JSON.stringify({ credentials: { openai: current }, removed: [], cursor: String(current.version) });
}

beforeEach(async () => {
  credentialsMode = "good";
  eventsMode = "none";
  current = { value: "sk-one", version: 1 };
  server = await new HostileServer((req, res, url) => {
    // The token endpoint authenticates by the form's actor_token, not a header.
    if (url.pathname !== "/oauth/token" && req.headers.authorization !== `Bearer ${TOKEN}`) {
      res.writeHead(401).end();
      return;
    }
    if (url.pathname === "/v1/credentials") {
      const json = { "content-type": "application/json" };
      if (credentialsMode === "good") res.writeHead(200, json).end(page());
      else if (credentialsMode === "huge-with-length") {
        res.writeHead(200, { ...json, "content-length": String(3 * GiB) });
        server.pour(res, '{"credentials":{"openai":{"value":"', "x");
      } else if (credentialsMode === "huge-chunked") {
        res.writeHead(200, json);
        server.pour(res, '{"credentials":{"openai":{"value":"', "x");
      } else {
        // Content-Length is the compressed size, well within the limit; the body decodes to 8 MiB.
        res.writeHead(200, { ...json, "content-encoding": "gzip", "content-length": String(gzipBomb.length) });
        res.end(gzipBomb);
      }
      return;
    }
    if (url.pathname === "/v1/credentials/events") {
      if (eventsMode === "none") {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      if (eventsMode === "good") res.write(": heartbeat\n\n");
      else if (eventsMode === "endless-line") server.pour(res, "data: ", "x");
      else if (eventsMode === "tiny-lines") server.pour(res, "", "data: x\n");
      else server.pour(res, "", `data: ${"y".repeat(4090)}\n`);
      return;
    }
    if (url.pathname === "/oauth/token" || url.pathname === "/v1/tools/credentials") {
      res.writeHead(200, { "content-type": "application/json" });
      server.pour(res, '{"access_token":"', "z");
      return;
    }
    res.writeHead(404).end();
  }).start();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((kw) => kw.close()));
  await server.stop();
});

async function connect(extra: Partial<ConnectOptions> = {}): Promise<Keyward> {
  const kw = await Keyward.connect({
    url: server.url,
    token: TOKEN,
    pollIntervalMs: 10,
    backoffBaseMs: 5,
    backoffCapMs: 20,
    ...extra,
  });
  clients.push(kw);
  return kw;
}

/** The next `error` the client reports, skipping none: the first one must be the refusal. */
async function refusal(kw: Keyward): Promise<ResponseTooLargeError> {
  const err = await nextEvent(kw, "error");
  expect(err).toBeInstanceOf(ResponseTooLargeError);
  return err as ResponseTooLargeError;
}

/** Serving the good value is not enough: the client must also come back once the server heals. */
async function recovers(kw: Keyward, heal: () => void): Promise<void> {
  const changed = nextEvent(kw, "change");
  current = { value: "sk-two", version: 2 };
  heal();
  expect(await changed).toEqual({ name: "openai", version: 2 });
  expect(kw.get("openai")).toBe("sk-two");
}

describe("GET /v1/credentials larger than limits.credentialsBytes (16 MiB)", () => {
  for (const mode of ["huge-with-length", "huge-chunked"] as const) {
    it(`${mode}: the read stops at the limit, the error is reported, the last good value is served`, async () => {
      const counter = countingFetch(nodeFetch);
      const kw = await connect({ fetch: counter.fetch });
      const poured = server.nextPour();
      // Counted when the error is reported: later retries (also refused) read their own share.
      const reported = refusal(kw).then((e) => ({ e, pulled: counter.pulled() }));
      credentialsMode = mode;
      const { e: err, pulled } = await reported;
      expect(err).toMatchObject({ code: "response_too_large", limit: "credentialsBytes", maxSize: 16 * 1024 * 1024 });
      expect(err.message).not.toContain("xxxx");
      expect(kw.get("openai")).toBe("sk-one");

      const { sent, cut } = await poured;
      expect(cut).toBe(true);
      expect(sent).toBeLessThan(DEFAULT_LIMITS.credentialsBytes + SOCKET_SLACK);
      // A declared length past the limit is refused before any of the body is read.
      const cap = mode === "huge-with-length" ? 0 : DEFAULT_LIMITS.credentialsBytes;
      expect(pulled - page().length).toBeLessThanOrEqual(cap + 2 * CHUNK);

      await recovers(kw, () => {
        credentialsMode = "good";
      });
    });
  }

  it("a Content-Length within the limit is not believed: a gzip body decoding past it is refused", async () => {
    const kw = await connect({ fetch: globalThis.fetch, limits: { credentialsBytes: 1024 * 1024 } });
    const reported = refusal(kw);
    credentialsMode = "gzip-bomb";
    expect(await reported).toMatchObject({ limit: "credentialsBytes", maxSize: 1024 * 1024 });
    expect(kw.get("openai")).toBe("sk-one");
    await recovers(kw, () => {
      credentialsMode = "good";
    });
  });

  it("at connect, with nothing to serve yet, connect fails with the typed error", async () => {
    credentialsMode = "huge-chunked";
    const poured = server.nextPour();
    const err = await connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResponseTooLargeError);
    expect((await poured).cut).toBe(true);
  });
});

describe("event stream", () => {
  const cases = [
    { mode: "endless-line", limit: "sseLineChars", what: "an endless data: line without a line break" },
    { mode: "tiny-lines", limit: "sseEventLines", what: "endless tiny data: lines forming one event" },
    { mode: "big-event", limit: "sseEventChars", what: "an event of 4 KiB lines past 1 Mi characters" },
  ] as const;
  for (const { mode, limit, what } of cases) {
    it(`${what}: cut at limits.${limit}, reported, last good value served, reconnects`, async () => {
      eventsMode = mode;
      const poured = server.nextPour();
      const kw = await connect();
      const err = await refusal(kw);
      expect(err).toMatchObject({ code: "response_too_large", limit });
      expect(kw.get("openai")).toBe("sk-one");
      const { sent, cut } = await poured;
      expect(cut).toBe(true);
      expect(sent).toBeLessThan(DEFAULT_LIMITS.sseEventChars + SOCKET_SLACK);

      await recovers(kw, () => {
        eventsMode = "good";
      });
    });
  }
});

describe("other answers", () => {
  it("token exchange: an endless answer fails with ResponseTooLargeError at limits.responseBytes", async () => {
    const kw = await connect({ limits: { responseBytes: 64 * 1024 } });
    const poured = server.nextPour();
    const err = await kw.exchange({ subjectToken: "subject-token", audience: "b" }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "response_too_large", limit: "responseBytes", maxSize: 64 * 1024 });
    expect((await poured).cut).toBe(true);
    expect(kw.get("openai")).toBe("sk-one");
  });

  it("tool credentials: the wrapped tool's call fails with the typed error, the tool never runs", async () => {
    const kw = await connect();
    let ran = false;
    const tool = kw.tools.withUserCredentials(
      (_args: { credentials: Record<string, string> }) => {
        ran = true;
      },
      { names: ["github"], inject: "params", name: "tickets" },
    );
    const poured = server.nextPour();
    const err = await Promise.resolve(tool({}, { userToken: "user-jwt" })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeywardError);
    expect(err).toMatchObject({ code: "response_too_large", limit: "responseBytes" });
    expect(ran).toBe(false);
    const { sent, cut } = await poured;
    expect(cut).toBe(true);
    expect(sent).toBeLessThan(DEFAULT_LIMITS.responseBytes + SOCKET_SLACK);
  });
});
