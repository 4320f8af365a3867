import { afterEach, describe, expect, it } from "vitest";
import {
  accountOf,
  alive,
  EXIT_SERVER,
  eventually,
  GARBAGE_SERVER,
  memoryCredentials,
  stdioSpec,
  textOf,
} from "../../test-support/mcp/fixtures.js";
import { recordingAudit } from "../../test-support/recording-audit.js";
import { createMcpGateway, type McpGateway, type ToolCallOutcome } from "./mcp-gateway.js";
import { withEveryTool } from "./mcp-tool-access.js";
import type { UpstreamSpec } from "./mcp-upstream-spec.js";

// The pool through the gateway service, with real child processes (mcp-tools-server.mjs & co).
const KEYS: Record<string, string> = {
  alice: "AKIA-alice-11112222",
  bob: "AKIA-bob-33334444",
  carol: "AKIA-carol-5555",
};

let gateway: McpGateway | undefined;
afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
});

function setup(
  opts: { specs?: UpstreamSpec[]; timeoutMs?: number; max?: number; idleMs?: number; maxCalls?: number } = {},
) {
  const credentials = memoryCredentials();
  for (const [user, key] of Object.entries(KEYS)) credentials.set(user, "cloud_key", key);
  const audit = recordingAudit();
  const outcomes: Array<[string, ToolCallOutcome]> = [];
  const specs = opts.specs ?? [stdioSpec()];
  gateway = createMcpGateway({
    servers: new Map(specs.map((s) => [s.name, s])),
    credentials,
    audit,
    onToolCall: (server, outcome) => outcomes.push([server, outcome]),
    toolTimeoutMs: opts.timeoutMs ?? 20_000,
    startTimeoutMs: 15_000,
    maxProcesses: opts.max ?? 10,
    idleTimeoutMs: opts.idleMs ?? 60_000,
    ...(opts.maxCalls !== undefined ? { maxCallsPerUser: opts.maxCalls } : {}),
  });
  return { gw: gateway, credentials, audit, outcomes };
}

const pidOf = async (gw: McpGateway, user: string, server = "cloud") =>
  Number(textOf(await gw.callTool(server, withEveryTool(user), { name: "pid" })));

describe("upstream process pool", () => {
  it("runs one process per user, with that user's credential, reused across calls", async () => {
    const { gw } = setup();
    const a = await gw.callTool("cloud", withEveryTool("alice"), { name: "whoami" });
    const b = await gw.callTool("cloud", withEveryTool("bob"), { name: "whoami" });
    expect(textOf(a)).toContain(accountOf(KEYS.alice as string));
    expect(textOf(b)).toContain(accountOf(KEYS.bob as string));
    const first = await pidOf(gw, "alice");
    expect(await pidOf(gw, "alice")).toBe(first);
    expect(await pidOf(gw, "bob")).not.toBe(first);
    expect(gw.liveUpstreams).toBe(2);
  });

  it("concurrent first calls of one user share a single start", async () => {
    const { gw } = setup();
    const pids = await Promise.all(Array.from({ length: 8 }, () => pidOf(gw, "alice")));
    expect(new Set(pids).size).toBe(1);
    expect(gw.liveUpstreams).toBe(1);
  });

  it("stops a process after the idle timeout", async () => {
    const { gw } = setup({ idleMs: 150 });
    const pid = await pidOf(gw, "alice");
    await eventually(() => !alive(pid), "the idle process to stop");
    expect(gw.liveUpstreams).toBe(0);
    expect(await pidOf(gw, "alice")).not.toBe(pid);
  });

  it("at the cap, stops the least recently used idle process to make room", async () => {
    const { gw } = setup({ max: 2 });
    const alicePid = await pidOf(gw, "alice");
    const bobPid = await pidOf(gw, "bob");
    await pidOf(gw, "bob"); // alice is now the least recently used
    const carol = await gw.callTool("cloud", withEveryTool("carol"), { name: "whoami" });
    expect(textOf(carol)).toContain(accountOf(KEYS.carol as string));
    await eventually(() => !alive(alicePid), "alice's process to be evicted");
    expect(alive(bobPid)).toBe(true);
    expect(gw.liveUpstreams).toBe(2);
  });

  it("at the cap with every process busy, refuses cleanly instead of waiting", async () => {
    const { gw, outcomes } = setup({ max: 2, timeoutMs: 1_500 });
    await pidOf(gw, "alice");
    await pidOf(gw, "bob");
    const busy = [
      gw.callTool("cloud", withEveryTool("alice"), { name: "hang" }),
      gw.callTool("cloud", withEveryTool("bob"), { name: "hang" }),
    ];
    // Both calls hold their process once their credential lookups (microtasks) have run.
    await new Promise((r) => setImmediate(r));
    const refused = await gw.callTool("cloud", withEveryTool("carol"), { name: "whoami" });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toMatch(/too many upstream MCP processes/);
    expect(outcomes).toContainEqual(["cloud", "upstream_error"]);
    for (const r of await Promise.all(busy)) expect(textOf(r)).toMatch(/timed out/);
  });

  it("times out a hanging tool, kills its process, and starts a new one for the next call", async () => {
    // Long enough for a process to start and answer on a loaded machine: only `hang` may time out.
    const { gw, outcomes } = setup({ timeoutMs: 1_500 });
    const pid = await pidOf(gw, "alice");
    expect(Number.isInteger(pid)).toBe(true);
    const r = await gw.callTool("cloud", withEveryTool("alice"), { name: "hang" });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toBe("the tool timed out after 1500 ms; its server was restarted");
    expect(outcomes.at(-1)).toEqual(["cloud", "timeout"]);
    await eventually(() => !alive(pid), "the hung process to be killed");
    const next = await pidOf(gw, "alice");
    expect(Number.isInteger(next)).toBe(true);
    expect(next).not.toBe(pid);
  });

  it("a process that crashes mid-call gives a clean error; the next call starts a new one", async () => {
    const { gw } = setup();
    const pid = await pidOf(gw, "alice");
    const r = await gw.callTool("cloud", withEveryTool("alice"), { name: "crash" });
    expect(r).toEqual({ isError: true, content: [{ type: "text", text: "the upstream MCP server exited" }] });
    expect(alive(pid)).toBe(false);
    expect(await pidOf(gw, "alice")).not.toBe(pid);
  });

  it("a process writing garbage on stdout is stopped at once (not at the timeout); the next call works", async () => {
    const { gw } = setup({ timeoutMs: 20_000 });
    const pid = await pidOf(gw, "alice");
    const started = Date.now();
    const r = await gw.callTool("cloud", withEveryTool("alice"), { name: "garbage" });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/sent data that is not MCP/);
    expect(textOf(r)).not.toContain("Traceback");
    await eventually(() => !alive(pid), "the broken process to be killed");
    expect(textOf(await gw.callTool("cloud", withEveryTool("alice"), { name: "whoami" }))).toContain(
      accountOf(KEYS.alice as string),
    );
  });

  it("a stdout line over 16 MiB stops the process with a clean error (not at the timeout); the next call works", async () => {
    const { gw } = setup({ timeoutMs: 30_000 });
    const pid = await pidOf(gw, "alice");
    const r = await gw.callTool("cloud", withEveryTool("alice"), { name: "huge_line" });
    expect(r).toEqual({
      isError: true,
      content: [{ type: "text", text: "the upstream MCP server sent a message over 16 MiB; it was stopped" }],
    });
    await eventually(() => !alive(pid), "the oversized process to be killed");
    expect(textOf(await gw.callTool("cloud", withEveryTool("alice"), { name: "whoami" }))).toContain(
      accountOf(KEYS.alice as string),
    );
  });

  it("one user's calls in flight on a server are capped; past it a call is refused at once, others unaffected", async () => {
    const { gw, audit, outcomes } = setup({ maxCalls: 2 });
    // Admission is decided when callTool is entered, before anything is awaited.
    const alice = [1, 2, 3].map(() =>
      gw.callTool("cloud", withEveryTool("alice"), { name: "slow", arguments: { ms: 50 } }),
    );
    const bob = gw.callTool("cloud", withEveryTool("bob"), { name: "slow", arguments: { ms: 50 } });
    const [a1, a2, a3] = await Promise.all(alice);
    expect(textOf(a1)).toContain(accountOf(KEYS.alice as string));
    expect(textOf(a2)).toContain(accountOf(KEYS.alice as string));
    expect(a3).toEqual({
      isError: true,
      content: [
        { type: "text", text: expect.stringMatching(/^too many of your calls are in flight on this MCP server/) },
      ],
    });
    expect(textOf(await bob)).toContain(accountOf(KEYS.bob as string));
    expect(outcomes.filter(([, o]) => o === "busy")).toHaveLength(1);
    expect(audit.events.filter((e) => e.code === "busy")).toHaveLength(1);
    // The slots are given back: the next call is admitted.
    expect(textOf(await gw.callTool("cloud", withEveryTool("alice"), { name: "whoami" }))).toContain(
      accountOf(KEYS.alice as string),
    );
  });

  it("an upstream that never speaks MCP, or exits at once, fails its calls cleanly", async () => {
    const { gw } = setup({ specs: [stdioSpec(GARBAGE_SERVER, {}, "garbage"), stdioSpec(EXIT_SERVER, {}, "dead")] });
    const g = await gw.callTool("garbage", withEveryTool("alice"), { name: "whoami" });
    expect(textOf(g)).toMatch(/sent data that is not MCP/);
    const d = await gw.callTool("dead", withEveryTool("alice"), { name: "whoami" });
    expect(d.isError).toBe(true);
    expect(textOf(d)).toMatch(/exited during startup|failed to initialize/);
    expect(gw.liveUpstreams).toBe(0);
    await expect(gw.listTools("dead", withEveryTool("alice"), undefined)).rejects.toThrow(
      /exited during startup|failed to initialize/,
    );
  });

  it("a command that does not exist fails cleanly", async () => {
    const spec = { ...stdioSpec(), command: "/nonexistent/keyward-test-tool" };
    const { gw } = setup({ specs: [spec] });
    const r = await gw.callTool("cloud", withEveryTool("alice"), { name: "whoami" });
    expect(textOf(r)).toBe("could not start the upstream MCP server (ENOENT)");
  });

  it("a credential change stops the user's process; the next call runs with the new value", async () => {
    const { gw, credentials } = setup();
    const pid = await pidOf(gw, "alice");
    const bobPid = await pidOf(gw, "bob");
    credentials.set("alice", "cloud_key", "AKIA-alice-rotated-999");
    await eventually(() => !alive(pid), "alice's old process to stop");
    expect(alive(bobPid)).toBe(true);
    const r = await gw.callTool("cloud", withEveryTool("alice"), { name: "whoami" });
    expect(textOf(r)).toContain(accountOf("AKIA-alice-rotated-999"));
  });

  it("a call in flight when the credential changes finishes on the old process, then it stops", async () => {
    const { gw, credentials } = setup();
    const pid = await pidOf(gw, "alice");
    const slow = gw.callTool("cloud", withEveryTool("alice"), { name: "slow", arguments: { ms: 300 } });
    await new Promise((r) => setImmediate(r));
    credentials.set("alice", "cloud_key", "AKIA-alice-new-000");
    expect(textOf(await slow)).toContain(`${accountOf(KEYS.alice as string)} ${pid}`);
    await eventually(() => !alive(pid), "the retired process to stop");
  });

  it("reassembles messages that arrive in pieces", async () => {
    const { gw } = setup({ specs: [stdioSpec(undefined, { SPLIT_WRITES: "1" })] });
    const r = await gw.callTool("cloud", withEveryTool("alice"), { name: "whoami" });
    expect(textOf(r)).toContain(accountOf(KEYS.alice as string));
  });

  it("close() stops every process", async () => {
    const { gw } = setup();
    const pids = [await pidOf(gw, "alice"), await pidOf(gw, "bob")];
    await gw.close();
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(gw.liveUpstreams).toBe(0);
  });
});
