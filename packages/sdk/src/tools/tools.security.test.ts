import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { FakeToolsServer } from "../../test-support/tools/fake-tools-server.js";
import { collect, encodings, startTools } from "../../test-support/tools/setup.js";
import type { Keyward } from "../client/keyward.js";
import { DEFAULT_MARKER as M } from "../redaction/index.js";

// Canaries: if one of these shows up anywhere the model or the audit log can read, a test fails.
const ALICE_AK = "canary-alice-AK-7Hq2mXv9pL4sW8zN";
const BOB_AK = "canary-bob-AK-3Rt6yUe1oP0aS5dFg";

let fake: FakeToolsServer;
let kw: Keyward;
let close: () => Promise<void>;
let alice: string;
let bob: string;

beforeEach(async () => {
  ({ fake, kw, close } = await startTools());
  fake.granted = new Set(["cloud_ak"]);
  alice = fake.addUser("alice", { cloud_ak: ALICE_AK });
  bob = fake.addUser("bob", { cloud_ak: BOB_AK });
});
afterEach(() => close());

const everything = (v: unknown) =>
  JSON.stringify(v, (_k, x) => (x instanceof Error ? { ...x, m: x.message, s: x.stack } : x));

describe("the user comes from the token, never from arguments", () => {
  it("planted credentials, user and user_id are dropped before the tool sees its arguments", async () => {
    let seen: Record<string, unknown> | undefined;
    const tool = kw.tools.withUserCredentials(
      async (args: { q: string; credentials: Record<string, string> }, ctx) => {
        seen = { ...args, ctxUser: ctx.user };
        return "ok";
      },
      { names: ["cloud_ak"], inject: "params", name: "planted" },
    );
    const planted = { q: "x", user_id: "bob", user: "user:bob", credentials: { cloud_ak: "attacker-value" } };
    await tool(planted, { userToken: alice });
    expect(seen).toEqual({ q: "x", credentials: { cloud_ak: ALICE_AK }, ctxUser: "user:alice" });
    // Keyward was asked with alice's token and the wrapped names only, nothing from the arguments.
    const [body] = fake.bodies("/v1/tools/credentials");
    expect(JSON.parse(body!)).toEqual({ user_token: alice, names: ["cloud_ak"] });
    await kw.tools.flush();
    expect(fake.auditEvents).toEqual([{ tool: "planted", user: "user:alice", outcome: "ok", redactions: 0 }]);
  });

  it("1,000 concurrent calls from 50 users never mix credentials", async () => {
    const users = Array.from({ length: 50 }, (_, i) => {
      const value = `canary-user${i}-${createHash("sha256").update(String(i)).digest("hex").slice(0, 24)}`;
      return { id: `u${i}`, value, token: fake.addUser(`u${i}`, { cloud_ak: value }) };
    });
    const fingerprint = (v: string) => createHash("sha256").update(v).digest("hex");
    const tool = kw.tools.withUserCredentials(
      async (args: { i: number; credentials: Record<string, string> }, ctx) => {
        // Yield to the other calls between reading the value and answering.
        await new Promise((r) => setImmediate(r));
        return { i: args.i, user: ctx.user, fp: fingerprint(args.credentials.cloud_ak as string) };
      },
      { names: ["cloud_ak"], inject: "params", name: "fp" },
    );
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => {
        const u = users[i % 50]!;
        return tool({ i }, { userToken: u.token }).then((r) => ({ r, u }));
      }),
    );
    for (const { r, u } of results) {
      expect(r.user).toBe(`user:${u.id}`);
      expect(r.fp).toBe(fingerprint(u.value));
    }
  });
});

describe("env tools: the agent's process.env is never touched", () => {
  it("process.env is the same object with the same contents after env calls", async () => {
    const before = { ...process.env };
    const ref = process.env;
    const tool = kw.tools.withUserCredentials(
      async (_a: object, ctx) => {
        ctx.env.EXTRA = "changed-by-tool";
        return ctx.env.CLOUD_AK === ALICE_AK;
      },
      { names: ["cloud_ak"], inject: "env", name: "envcheck" },
    );
    expect(await tool({}, { userToken: alice })).toBe(true);
    expect(process.env).toBe(ref);
    expect({ ...process.env }).toEqual(before);
    expect(Object.values(process.env)).not.toContain(ALICE_AK);
  });

  it("each call gets its own environment object", async () => {
    const envs: Record<string, string>[] = [];
    const tool = kw.tools.withUserCredentials(
      async (_a: object, ctx) => {
        envs.push(ctx.env);
      },
      { names: ["cloud_ak"], inject: "env", name: "two" },
    );
    await tool({}, { userToken: alice });
    await tool({}, { userToken: bob });
    expect(envs[0]).not.toBe(envs[1]);
    expect([envs[0]?.CLOUD_AK, envs[1]?.CLOUD_AK]).toEqual([ALICE_AK, BOB_AK]);
  });
});

describe("a CLI tool's output never carries the value", () => {
  const node = process.execPath;

  it("baseEnv limits what the child inherits; the agent's own Keyward token is redacted too", async () => {
    const tool = kw.tools.withUserCredentials(
      async (_a: object, ctx) => (await ctx.run(node, ["-e", "console.log(JSON.stringify(process.env))"])).stdout,
      // As if the agent had put its own key where the child can read it.
      {
        names: ["cloud_ak"],
        inject: "env",
        name: "limited",
        baseEnv: { PATH: process.env.PATH, KW_KEY: fake.agentToken },
      },
    );
    const env = JSON.parse((await tool({}, { userToken: alice })) as string) as Record<string, string>;
    expect(env.CLOUD_AK).toBe(M);
    expect(env.KW_KEY).toBe(M);
    expect(env.HOME).toBeUndefined();
  });

  it("a child printing its whole environment, and its base64", async () => {
    const tool = kw.tools.withUserCredentials(
      async (_a: object, ctx) => {
        const env = await ctx.run(node, ["-e", "console.log(JSON.stringify(process.env))"]);
        const b64 = await ctx.run(node, [
          "-e",
          "console.log(Buffer.from(JSON.stringify(process.env)).toString('base64'))",
        ]);
        return `${env.stdout}\n${b64.stdout}`;
      },
      { names: ["cloud_ak"], inject: "env", name: "printenv" },
    );
    const out = (await tool({}, { userToken: alice })) as string;
    expect(out).not.toContain(ALICE_AK);
    for (const form of Object.values(encodings(ALICE_AK))) expect(out).not.toContain(form);
    expect(out).toContain(`"CLOUD_AK":"${M}"`);
    // The base64 of the whole environment decodes to text without the value.
    const decoded = Buffer.from(out.split("\n")[2] ?? "", "base64").toString("latin1");
    expect(decoded).not.toContain(ALICE_AK);
    await kw.tools.flush();
    expect(fake.auditEvents).toEqual([{ tool: "printenv", user: "user:alice", outcome: "ok", redactions: 2 }]);
  });

  it("a child writing the value in two writes, streamed as two chunks, is redacted", async () => {
    const script = [
      "const v = process.env.CLOUD_AK;",
      "process.stdout.write('key=' + v.slice(0, 10));",
      // The second half only after the parent says so: the halves are two chunks for sure.
      "process.stdin.once('data', () => process.stdout.write(v.slice(10) + '\\n'));",
    ].join("\n");
    const raw: string[] = [];
    const tool = kw.tools.withUserCredentials(
      async function* (_a: object, ctx) {
        const child = spawn(node, ["-e", script], { env: ctx.env, signal: ctx.signal });
        for await (const chunk of child.stdout) {
          raw.push(String(chunk));
          yield chunk as Buffer;
          child.stdin.end("go\n");
        }
      },
      { names: ["cloud_ak"], inject: "env", name: "split" },
    );
    const chunks = (await collect((await tool({}, { userToken: alice })) as AsyncIterable<Buffer>)) as Buffer[];
    // The tool really produced the value in two pieces, neither holding all of it.
    expect(raw).toHaveLength(2);
    expect(raw.some((c) => c.includes(ALICE_AK))).toBe(false);
    expect(raw.join("")).toContain(ALICE_AK);
    expect(Buffer.concat(chunks).toString()).toBe(`key=${M}\n`);
  });
});

describe("errors carry no value", () => {
  it("message, stack, cause, own fields and AggregateError members are redacted", async () => {
    const tool = kw.tools.withUserCredentials(
      async (_a: object, ctx) => {
        const value = ctx.headers.Authorization!.slice(7);
        const inner = new Error(`inner ${Buffer.from(value).toString("base64")}`);
        const err = Object.assign(new Error(`request failed with key ${value}`, { cause: inner }), {
          config: { headers: { authorization: `Bearer ${value}` } },
          stderr: `denied: ${encodeURIComponent(value)}`,
          code: "E_DENIED",
        });
        throw new AggregateError([err, new Error(value)], `all failed (${value})`);
      },
      { names: ["cloud_ak"], inject: "headers", name: "fails" },
    );
    const err = (await tool({}, { userToken: alice }).catch((e: unknown) => e)) as AggregateError;
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("AggregateError");
    expect(err.message).toBe(`all failed (${M})`);
    const [first, second] = err.errors as (Error & Record<string, unknown>)[];
    expect(first?.message).toBe(`request failed with key ${M}`);
    expect((first!.cause as Error).message).toBe(`inner ${M}`);
    expect(first?.config).toEqual({ headers: { authorization: `Bearer ${M}` } });
    expect(first?.stderr).toBe(`denied: ${M}`);
    expect(first?.code).toBe("E_DENIED");
    expect(second?.message).toBe(M);
    const dump = everything({ err, errors: err.errors, stacks: [err.stack, first?.stack, second?.stack] });
    for (const form of Object.values(encodings(ALICE_AK))) expect(dump).not.toContain(form);
    await kw.tools.flush();
    expect(fake.auditEvents).toMatchObject([{ tool: "fails", outcome: "error" }]);
    expect((fake.auditEvents[0] as { redactions: number }).redactions).toBeGreaterThanOrEqual(6);
  });

  it("a stack trace holding the value (a value in a function name) is redacted", async () => {
    const tool = kw.tools.withUserCredentials(
      async (args: { credentials: Record<string, string> }) => {
        const named = { [args.credentials.cloud_ak as string]: () => new Error("x").stack };
        throw Object.assign(new Error("see stack"), { stack: named[args.credentials.cloud_ak as string]!() });
      },
      { names: ["cloud_ak"], inject: "params", name: "stack" },
    );
    const err = (await tool({}, { userToken: alice }).catch((e: unknown) => e)) as Error;
    expect(err.stack).toContain(M);
    expect(err.stack).not.toContain(ALICE_AK);
  });

  it("a thrown string or object is redacted too", async () => {
    const tool = kw.tools.withUserCredentials(
      async (args: { credentials: Record<string, string> }) => {
        throw { detail: `k=${args.credentials.cloud_ak}` };
      },
      { names: ["cloud_ak"], inject: "params", name: "obj" },
    );
    await expect(tool({}, { userToken: alice })).rejects.toEqual({ detail: `k=${M}` });
  });

  it("a value that would split a header line is refused without echoing it", async () => {
    const evil = fake.addUser("eve", { cloud_ak: "abc\r\nX-Injected: 1" });
    const tool = kw.tools.withUserCredentials(async () => "ran", {
      names: ["cloud_ak"],
      inject: "headers",
      name: "hdr",
    });
    const err = (await tool({}, { userToken: evil }).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/line break/);
    expect(everything({ m: err.message, s: err.stack })).not.toContain("X-Injected");
  });
});

describe("the audit log and errors never see a value or the user's token", () => {
  it("every audit body and every error is free of the values and the user token", async () => {
    const ok = kw.tools.withUserCredentials(
      async (args: { credentials: Record<string, string> }) => args.credentials.cloud_ak,
      {
        names: ["cloud_ak"],
        inject: "params",
        name: "echo",
      },
    );
    const failing = kw.tools.withUserCredentials(
      async (args: { credentials: Record<string, string> }) => {
        throw new Error(args.credentials.cloud_ak);
      },
      { names: ["cloud_ak"], inject: "params", name: "throws" },
    );
    const errors: unknown[] = [];
    expect(await ok({}, { userToken: alice })).toBe(M);
    errors.push(await failing({}, { userToken: bob }).catch((e: unknown) => e));
    errors.push(await ok({}, { userToken: `${alice}tampered` }).catch((e: unknown) => e));
    fake.granted.clear();
    errors.push(await ok({}, { userToken: alice }).catch((e: unknown) => e));
    await kw.tools.flush();
    const audit = fake.bodies("/v1/audit/events");
    expect(audit).toHaveLength(2);
    const text = everything({ audit, errors });
    for (const canary of [ALICE_AK, BOB_AK, alice, bob, alice.split(".")[1]!]) expect(text).not.toContain(canary);
    expect(audit.map((b) => JSON.parse(b))).toEqual([
      { tool: "echo", user: "user:alice", outcome: "ok", redactions: 1 },
      { tool: "throws", user: "user:bob", outcome: "error", redactions: 2 },
    ]);
  });
});
