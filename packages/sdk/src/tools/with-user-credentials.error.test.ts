import { afterEach, describe, expect, it } from "vitest";
import type { FakeToolsServer } from "../../test-support/tools/fake-tools-server.js";
import { startTools } from "../../test-support/tools/setup.js";
import type { Keyward } from "../client/keyward.js";
import { KeywardError } from "../errors.js";
import { AuditError, ToolTimeoutError, UserCredentialError } from "./errors.js";

const AK = "LTAI5tQx9kPz3WmN7vRb2Yc8";

let fake: FakeToolsServer;
let kw: Keyward;
let close: (() => Promise<void>) | undefined;
let alice: string;
let calls = 0;

async function setup(opts: Parameters<typeof startTools>[0] = {}) {
  ({ fake, kw, close } = await startTools(opts));
  fake.granted = new Set(["aliyun_ak", "other"]);
  alice = fake.addUser("alice", { aliyun_ak: AK });
  calls = 0;
}
afterEach(async () => {
  await close?.();
  close = undefined;
});

const counted = async () => {
  calls++;
  return "ran";
};
const toolsRequests = () => fake.received.filter((r) => r.path === "/v1/tools/credentials").length;

describe("withUserCredentials: refused before the tool runs", () => {
  it.each([
    ["no context", undefined],
    ["no token", {}],
    ["an empty token", { userToken: "" }],
    ["a token that is not a string", { userToken: 42 }],
  ])("%s → missing_user_token, and no request at all", async (_, ctx) => {
    await setup();
    const tool = kw.tools.withUserCredentials(counted, { names: ["aliyun_ak"], inject: "params" });
    // biome-ignore lint/suspicious/noExplicitAny: bad input on purpose
    const err = await tool({}, ctx as any).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserCredentialError);
    expect(err).toMatchObject({ code: "missing_user_token" });
    expect(toolsRequests()).toBe(0);
    expect(calls).toBe(0);
  });

  it.each([
    ["an unknown token", "invalid_token", 401, ["aliyun_ak"]],
    ["a name not granted to the agent", "credential_not_granted", 403, ["aliyun_ak", "ungranted"]],
    ["a name the user has not set", "credential_not_found", 404, ["aliyun_ak", "other"]],
  ])("%s → %s (%i), the tool not run, nothing audited", async (_, code, status, names) => {
    await setup();
    const tool = kw.tools.withUserCredentials(counted, { names, inject: "params" });
    const token = code === "invalid_token" ? `${alice}x` : alice;
    const err = await tool({}, { userToken: token }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserCredentialError);
    expect(err).toMatchObject({ code, status, requestId: "req_fake" });
    if (code !== "invalid_token") expect((err as Error).message).toContain(names[names.length - 1]);
    expect(calls).toBe(0);
    await kw.tools.flush();
    expect(fake.auditEvents).toEqual([]);
  });

  it.each([
    [
      "500 with the §4 body",
      { kind: "status", status: 500, body: '{"error":{"code":"internal","message":"boom"}}' },
      "internal",
    ],
    ["502 without a body", { kind: "status", status: 502 }, "http_502"],
    ["200 that is not JSON", { kind: "body", body: "<html>" }, "invalid_response"],
    ["200 without credentials", { kind: "body", body: '{"values":{}}' }, "invalid_response"],
    ["200 missing a requested name", { kind: "body", body: '{"credentials":{}}' }, "invalid_response"],
    ["200 with a non-string value", { kind: "body", body: '{"credentials":{"aliyun_ak":7}}' }, "invalid_response"],
  ] as const)("%s → %s, the tool not run", async (_, fault, code) => {
    await setup();
    fake.toolsFaults.push(fault);
    const tool = kw.tools.withUserCredentials(counted, { names: ["aliyun_ak"], inject: "params" });
    const err = await tool({}, { userToken: alice }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeywardError);
    expect(err).toMatchObject({ code });
    expect(calls).toBe(0);
  });

  it("a server that never answers → server_unreachable after requestTimeoutMs", async () => {
    await setup({ requestTimeoutMs: 150 });
    fake.toolsFaults.push({ kind: "hang" });
    const tool = kw.tools.withUserCredentials(counted, { names: ["aliyun_ak"], inject: "params" });
    await expect(tool({}, { userToken: alice })).rejects.toMatchObject({ code: "server_unreachable" });
    expect(calls).toBe(0);
  });

  it("a server that never answers within the tool's timeoutMs → tool_timeout", async () => {
    await setup();
    fake.toolsFaults.push({ kind: "hang" });
    const tool = kw.tools.withUserCredentials(counted, { names: ["aliyun_ak"], inject: "params", timeoutMs: 100 });
    await expect(tool({}, { userToken: alice })).rejects.toBeInstanceOf(ToolTimeoutError);
  });

  it("after kw.close() → closed", async () => {
    await setup();
    const tool = kw.tools.withUserCredentials(counted, { names: ["aliyun_ak"], inject: "params" });
    await kw.close();
    await expect(tool({}, { userToken: alice })).rejects.toMatchObject({ code: "closed" });
  });
});

describe("withUserCredentials: bad options fail when the tool is wrapped", () => {
  it.each([
    ["no names", { names: [], inject: "params" }, /names/],
    ["a name twice", { names: ["a", "a"], inject: "params" }, /twice/],
    ["an unknown mode", { names: ["a"], inject: "argv" }, /inject/],
    ["env mapping to an unknown name", { names: ["a"], inject: "env", env: { X: "b" } }, /env\.X.*"b"/],
    ["env mapping with a bad variable", { names: ["a"], inject: "env", env: { "X-Y": "a" } }, /environment variable/],
    ["two names, one variable", { names: ["a-b", "a_b"], inject: "env" }, /same environment variable/],
    ["env option without env mode", { names: ["a"], inject: "params", env: { X: "a" } }, /needs inject: "env"/],
    ["baseEnv without env mode", { names: ["a"], inject: "headers", baseEnv: {} }, /needs inject: "env"/],
    ["headers for several names without templates", { names: ["a", "b"], inject: "headers" }, /headers option/],
    ["a template naming an unknown credential", { names: ["a"], inject: "headers", headers: { X: "{b}" } }, /"b"/],
    ["a bad header name", { names: ["a"], inject: "headers", headers: { "X Y": "{a}" } }, /header name/],
    ["a zero timeout", { names: ["a"], inject: "params", timeoutMs: 0 }, /timeoutMs/],
  ])("%s", async (_, opts, message) => {
    await setup();
    // biome-ignore lint/suspicious/noExplicitAny: bad input on purpose
    expect(() => kw.tools.withUserCredentials(counted, opts as any)).toThrow(message);
  });

  it("an anonymous tool without a name option", async () => {
    await setup();
    const tools = [
      (
        () => async () =>
          "x"
      )(),
    ];
    expect(() => kw.tools.withUserCredentials(tools[0]!, { names: ["a"], inject: "params" })).toThrow(/name/);
  });

  it('"params" with arguments that are not an object: an error result, audited', async () => {
    await setup();
    const tool = kw.tools.withUserCredentials(counted, { names: ["aliyun_ak"], inject: "params" });
    // biome-ignore lint/suspicious/noExplicitAny: bad input on purpose
    await expect(tool(["x"] as any, { userToken: alice })).rejects.toThrow(/object arguments/);
    expect(calls).toBe(0);
    await kw.tools.flush();
    expect(fake.auditEvents).toEqual([{ tool: "counted", user: "user:alice", outcome: "error", redactions: 0 }]);
  });
});

describe("withUserCredentials: tools that hang or fail", () => {
  it("a hanging tool rejects with ToolTimeoutError; its signal is aborted; outcome error", async () => {
    await setup();
    let signal: AbortSignal | undefined;
    const tool = kw.tools.withUserCredentials(
      (_a: object, ctx) => {
        signal = ctx.signal;
        return new Promise<never>(() => {});
      },
      { names: ["aliyun_ak"], inject: "headers", name: "hang", timeoutMs: 100 },
    );
    const err = await tool({}, { userToken: alice }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolTimeoutError);
    expect(err).toMatchObject({ code: "tool_timeout", tool: "hang", timeoutMs: 100 });
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBe(err);
    await kw.tools.flush();
    expect(fake.auditEvents).toEqual([{ tool: "hang", user: "user:alice", outcome: "error", redactions: 0 }]);
  });

  it("a stream that stops producing fails with ToolTimeoutError and is audited as an error", async () => {
    await setup();
    const tool = kw.tools.withUserCredentials(
      async function* () {
        yield `one ${AK}\n`;
        await new Promise(() => {});
      },
      { names: ["aliyun_ak"], inject: "params", name: "stall", timeoutMs: 150 },
    );
    const out = (await tool({}, { userToken: alice })) as AsyncIterable<string>;
    const seen: string[] = [];
    const err = await (async () => {
      for await (const c of out) seen.push(c);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolTimeoutError);
    // Whether the first chunk got out before the deadline depends on the machine; what did is redacted.
    expect(["", "one [redacted]\n"]).toContain(seen.join(""));
    await kw.tools.flush();
    expect(fake.auditEvents).toMatchObject([{ tool: "stall", user: "user:alice", outcome: "error" }]);
  });

  it("ctx.run's child is killed at the deadline (run answers only once it is gone)", async () => {
    await setup();
    let run: Promise<unknown> | undefined;
    const tool = kw.tools.withUserCredentials(
      (_a: object, ctx) => {
        run = ctx.run(process.execPath, ["-e", "setInterval(() => {}, 1e9)"]);
        return run;
      },
      { names: ["aliyun_ak"], inject: "env", name: "sleeper", timeoutMs: 300 },
    );
    await expect(tool({}, { userToken: alice })).rejects.toBeInstanceOf(ToolTimeoutError);
    // A child that never exits by itself: run settling proves it was killed.
    await expect(run).rejects.toBeInstanceOf(ToolTimeoutError);
  });

  it("the caller's signal cancels the call with the caller's reason", async () => {
    await setup();
    const ctrl = new AbortController();
    const tool = kw.tools.withUserCredentials(
      (_a: object, ctx) =>
        new Promise((_, reject) => {
          ctx.signal.addEventListener("abort", () => reject(new Error("stopped")));
          ctrl.abort(new Error("user went away"));
        }),
      { names: ["aliyun_ak"], inject: "params", name: "cancel" },
    );
    await expect(tool({}, { userToken: alice, signal: ctrl.signal })).rejects.toThrow("user went away");
  });

  it("a child that cannot be started rejects run with the spawn error", async () => {
    await setup();
    const tool = kw.tools.withUserCredentials((_a: object, ctx) => ctx.run("/nonexistent/keyward-test-cli"), {
      names: ["aliyun_ak"],
      inject: "env",
      name: "nocli",
    });
    await expect(tool({}, { userToken: alice })).rejects.toThrow(/ENOENT/);
  });
});

describe("withUserCredentials: audit failures", () => {
  it("a refused audit record goes to onAuditError; the call's result is unaffected; no retry", async () => {
    await setup();
    fake.auditFaults.push({
      kind: "status",
      status: 400,
      body: '{"error":{"code":"invalid_request","message":"bad"}}',
    });
    const errors: AuditError[] = [];
    const tool = kw.tools.withUserCredentials(counted, {
      names: ["aliyun_ak"],
      inject: "params",
      onAuditError: (e) => errors.push(e),
    });
    expect(await tool({}, { userToken: alice })).toBe("ran");
    await kw.tools.flush();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(AuditError);
    expect(errors[0]).toMatchObject({
      code: "invalid_request",
      status: 400,
      event: { tool: "counted", outcome: "ok" },
    });
    expect(fake.bodies("/v1/audit/events")).toHaveLength(1);
  });

  it("an outage (5xx) is retried and the record stored", async () => {
    await setup();
    fake.auditFaults.push({ kind: "status", status: 503 }, { kind: "status", status: 502 });
    const errors: unknown[] = [];
    kw.on("error", (e) => errors.push(e));
    const tool = kw.tools.withUserCredentials(counted, { names: ["aliyun_ak"], inject: "params" });
    await tool({}, { userToken: alice });
    await kw.tools.flush();
    expect(fake.auditEvents).toEqual([{ tool: "counted", user: "user:alice", outcome: "ok", redactions: 0 }]);
    expect(errors).toEqual([]);
  });

  it("without onAuditError, a lasting outage reaches the client's error event", async () => {
    await setup();
    for (let i = 0; i < 3; i++) fake.auditFaults.push({ kind: "status", status: 503 });
    const errors: unknown[] = [];
    kw.on("error", (e) => errors.push(e));
    const tool = kw.tools.withUserCredentials(counted, { names: ["aliyun_ak"], inject: "params" });
    expect(await tool({}, { userToken: alice })).toBe("ran");
    await kw.tools.flush();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(AuditError);
    expect(errors[0]).toMatchObject({ status: 503, event: { tool: "counted", user: "user:alice" } });
  });

  it("kw.close() waits for audit records in flight", async () => {
    await setup();
    const tool = kw.tools.withUserCredentials(counted, { names: ["aliyun_ak"], inject: "params" });
    await tool({}, { userToken: alice });
    await kw.close();
    expect(fake.auditEvents).toHaveLength(1);
  });
});
