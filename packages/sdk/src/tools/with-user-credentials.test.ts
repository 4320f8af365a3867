import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { FakeToolsServer } from "../../test-support/tools/fake-tools-server.js";
import { collect, encodings, startTools } from "../../test-support/tools/setup.js";
import type { Keyward } from "../client/keyward.js";
import { DEFAULT_MARKER as M } from "../redaction/index.js";

const AK = "LTAI5tQx9kPz3WmN7vRb2Yc8";
const SK = "sk-user-alice-Zq8xW3nL5vB1mK7pT4";

let fake: FakeToolsServer;
let kw: Keyward;
let close: () => Promise<void>;
let alice: string;

beforeEach(async () => {
  ({ fake, kw, close } = await startTools());
  fake.granted = new Set(["aliyun_ak", "aliyun-sk.v2"]);
  alice = fake.addUser("alice", { aliyun_ak: AK, "aliyun-sk.v2": SK });
});
afterEach(() => close());

describe("withUserCredentials: the pre-hook", () => {
  it("asks Keyward for the user's values with the agent's own token, once per call", async () => {
    const tool = kw.tools.withUserCredentials(async () => "ok", { names: ["aliyun_ak"], inject: "params", name: "t" });
    expect(await tool({}, { userToken: alice })).toBe("ok");
    const [req] = fake.received.filter((r) => r.path === "/v1/tools/credentials");
    expect(req?.authorization).toBe(`Bearer ${fake.agentToken}`);
    expect(JSON.parse(req!.body)).toEqual({ user_token: alice, names: ["aliyun_ak"] });
  });

  it('"params": the tool gets the arguments plus credentials, and the user from the token', async () => {
    let seen: unknown;
    const tool = kw.tools.withUserCredentials(
      async (args: { region: string; credentials: Record<string, string> }, ctx) => {
        seen = { args, user: ctx.user };
        return "done";
      },
      { names: ["aliyun_ak", "aliyun-sk.v2"], inject: "params", name: "regions" },
    );
    await tool({ region: "eu" }, { userToken: alice });
    expect(seen).toEqual({
      args: { region: "eu", credentials: { aliyun_ak: AK, "aliyun-sk.v2": SK } },
      user: "user:alice",
    });
  });

  it('"env": ctx.env is process.env plus default-named and mapped variables', async () => {
    let env: Record<string, string> = {};
    const tool = kw.tools.withUserCredentials(
      async (_args: unknown, ctx) => {
        env = ctx.env;
      },
      {
        names: ["aliyun_ak", "aliyun-sk.v2"],
        inject: "env",
        env: { ALIBABA_CLOUD_ACCESS_KEY_ID: "aliyun_ak" },
        name: "e",
      },
    );
    await tool({}, { userToken: alice });
    expect(env.ALIBABA_CLOUD_ACCESS_KEY_ID).toBe(AK);
    expect(env.ALIYUN_SK_V2).toBe(SK);
    expect(env.ALIYUN_AK).toBeUndefined();
    expect(env.PATH).toBe(process.env.PATH);
  });

  it('"headers": Authorization Bearer by default for one name; templates for several', async () => {
    const seen: Record<string, string>[] = [];
    const impl = async (_a: unknown, ctx: { headers: Record<string, string> }) => {
      seen.push(ctx.headers);
    };
    await kw.tools.withUserCredentials(impl, { names: ["aliyun_ak"], inject: "headers", name: "h1" })(
      {},
      { userToken: alice },
    );
    await kw.tools.withUserCredentials(impl, {
      names: ["aliyun_ak", "aliyun-sk.v2"],
      inject: "headers",
      headers: { "X-Key": "{aliyun_ak}", "X-Sig": "v2 {aliyun-sk.v2}:{aliyun_ak}" },
      name: "h2",
    })({}, { userToken: alice });
    expect(seen).toEqual([{ Authorization: `Bearer ${AK}` }, { "X-Key": AK, "X-Sig": `v2 ${SK}:${AK}` }]);
  });
});

describe("withUserCredentials: the post-hook", () => {
  it("redacts every encoding of every value from a string result and audits the count", async () => {
    const forms = [...Object.values(encodings(AK)), ...Object.values(encodings(SK))];
    const tool = kw.tools.withUserCredentials(
      async function listFunctions() {
        return forms.join(" | ");
      },
      { names: ["aliyun_ak", "aliyun-sk.v2"], inject: "params" },
    );
    expect(await tool({}, { userToken: alice })).toBe(forms.map(() => M).join(" | "));
    await kw.tools.flush();
    expect(fake.auditEvents).toEqual([
      { tool: "listFunctions", user: "user:alice", outcome: "ok", redactions: forms.length },
    ]);
    expect(tool.toolName).toBe("listFunctions");
  });

  it("redacts nested values, keys, bytes, Maps and class instances, keeping the shapes", async () => {
    class Resp {
      constructor(readonly url: URL) {}
    }
    const tool = kw.tools.withUserCredentials(
      async () => ({
        list: [AK, { [AK]: 1, deep: [[`x${SK}y`]] }],
        buf: Buffer.from(`b ${AK}`),
        bytes: new TextEncoder().encode(SK),
        map: new Map([[AK, SK]]),
        url: new URL(`https://api.example/?k=${AK}`),
        resp: new Resp(new URL(`https://h/${SK}`)),
        when: new Date(0),
        n: 42,
        nothing: null,
      }),
      { names: ["aliyun_ak", "aliyun-sk.v2"], inject: "params", name: "n" },
    );
    const out = await tool({}, { userToken: alice });
    expect(out.list).toEqual([M, { [M]: 1, deep: [[`x${M}y`]] }]);
    expect(Buffer.isBuffer(out.buf) && out.buf.toString()).toBe(`b ${M}`);
    expect(out.bytes).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(out.bytes).toString()).toBe(M);
    expect([...out.map]).toEqual([[M, M]]);
    expect(out.url).toBe(`https://api.example/?k=${M}`);
    expect(out.resp).toEqual({ url: `https://h/${M}` });
    expect(out.when).toEqual(new Date(0));
    expect([out.n, out.nothing]).toEqual([42, null]);
    await kw.tools.flush();
    expect(fake.auditEvents).toEqual([{ tool: "n", user: "user:alice", outcome: "ok", redactions: 9 }]);
  });

  it("keeps cycles as cycles", async () => {
    const tool = kw.tools.withUserCredentials(
      async () => {
        const a: Record<string, unknown> = { v: AK };
        a.self = a;
        return a;
      },
      { names: ["aliyun_ak"], inject: "params", name: "c" },
    );
    const out = (await tool({}, { userToken: alice })) as Record<string, unknown>;
    expect(out.v).toBe(M);
    expect(out.self).toBe(out);
  });
});

describe("withUserCredentials: streamed results", () => {
  const split = (s: string, at: number) => [s.slice(0, at), s.slice(at)];

  it("an async iterable of strings comes back as one, redacted across chunk boundaries", async () => {
    const tool = kw.tools.withUserCredentials(
      async function* () {
        yield "first line\nkey=";
        for (const part of split(AK, 7)) yield part;
        yield `\nbase64=${Buffer.from(AK).toString("base64").slice(0, 5)}`;
        yield `${Buffer.from(AK).toString("base64").slice(5)}\n`;
      },
      { names: ["aliyun_ak"], inject: "params", name: "s" },
    );
    const chunks = await collect((await tool({}, { userToken: alice })) as AsyncIterable<unknown>);
    expect(chunks.every((c) => typeof c === "string")).toBe(true);
    expect(chunks.join("")).toBe(`first line\nkey=${M}\nbase64=${M}\n`);
    await kw.tools.flush();
    expect(fake.auditEvents).toEqual([{ tool: "s", user: "user:alice", outcome: "ok", redactions: 2 }]);
  });

  it("the first chunk goes out before the stream ends (output is not buffered whole)", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const tool = kw.tools.withUserCredentials(
      async function* () {
        yield "progress: 10%\n";
        await gate;
        yield AK;
      },
      { names: ["aliyun_ak"], inject: "params", name: "p" },
    );
    const it = ((await tool({}, { userToken: alice })) as AsyncIterable<string>)[Symbol.asyncIterator]();
    expect((await it.next()).value).toBe("progress: 10%\n");
    release();
    expect((await it.next()).value).toBe(M);
    expect((await it.next()).done).toBe(true);
  });

  it("a web ReadableStream of bytes comes back as a web stream, redacted", async () => {
    const bytes = Buffer.from(`token: ${SK} end`);
    const tool = kw.tools.withUserCredentials(
      async () =>
        new ReadableStream<Uint8Array>({
          start(c) {
            for (let i = 0; i < bytes.length; i += 5) c.enqueue(bytes.subarray(i, i + 5));
            c.close();
          },
        }),
      { names: ["aliyun-sk.v2"], inject: "params", name: "w" },
    );
    const out = await tool({}, { userToken: alice });
    expect(out).toBeInstanceOf(ReadableStream);
    const chunks = (await collect(out as unknown as AsyncIterable<Uint8Array>)) as Uint8Array[];
    expect(Buffer.concat(chunks).toString()).toBe(`token: ${M} end`);
  });

  it("a node Readable comes back as a node Readable, redacted", async () => {
    const tool = kw.tools.withUserCredentials(
      async () =>
        Readable.from([Buffer.from(`a ${AK.slice(0, 3)}`), Buffer.from(`${AK.slice(3)} b`)], { objectMode: false }),
      {
        names: ["aliyun_ak"],
        inject: "params",
        name: "r",
      },
    );
    const out = await tool({}, { userToken: alice });
    expect(out).toBeInstanceOf(Readable);
    const chunks = (await collect(out)) as Buffer[];
    expect(Buffer.concat(chunks).toString()).toBe(`a ${M} b`);
  });
});

describe("withUserCredentials: env tools and child processes", () => {
  it("ctx.run runs a real child with the user's environment; its output is redacted", async () => {
    const tool = kw.tools.withUserCredentials(
      async (_a: unknown, ctx) => {
        const plain = await ctx.run(process.execPath, ["-e", "console.log(process.env.ALIYUN_AK)"]);
        const b64 = await ctx.run(process.execPath, [
          "-e",
          "console.log(Buffer.from(process.env.ALIYUN_AK).toString('base64'))",
        ]);
        return { plain: plain.stdout, b64: b64.stdout, code: plain.exitCode };
      },
      { names: ["aliyun_ak"], inject: "env", name: "cli" },
    );
    expect(await tool({}, { userToken: alice })).toEqual({ plain: `${M}\n`, b64: `${M}\n`, code: 0 });
    await kw.tools.flush();
    expect(fake.auditEvents).toEqual([{ tool: "cli", user: "user:alice", outcome: "ok", redactions: 2 }]);
  });
});
