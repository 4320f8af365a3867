import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runAgentToExit } from "../../packages/server/test-support/agent-process.js";
import { leakForms } from "../../packages/server/test-support/egress/upstreams.js";
import { listFunctionsAs, resultText } from "./client.mjs";
import { DEMO_USERS, newAccessKey, startExample } from "./start.mjs";

/**
 * The example as a user runs it: `keyward serve --config keyward.yaml` as a process, the fake
 * cloud, and the official MCP SDK client calling `/mcp/cloud` as alice, bob and carol.
 */

type Example = Awaited<ReturnType<typeof startExample>>;
let example: Example;

/** The fields of an audit event (SPEC §7) these tests read. */
interface AuditEvent {
  actor: string;
  outcome: string;
  target: string;
  details: Record<string, unknown>;
}

beforeAll(async () => {
  example = await startExample({
    users: [...DEMO_USERS, { id: "dave", functions: [] }],
    logLevel: "debug",
    accessLog: true,
  });
});
afterAll(async () => {
  await example?.close();
});

/** Access keys the tests set later (rotated, unknown): they must not leak either. */
const laterKeys: string[] = [];
const keyOf = (user: string): string => example.users[user]?.key as string;
const accessKeyOf = (user: string): string => example.users[user]?.accessKey as string;

/** Every form of `secret` the gateway promises to redact. */
function forms(secret: string): string[] {
  const { raw, base64, base64url, hex, HEX, url } = leakForms(secret);
  return [raw, base64, base64url, hex, HEX, url] as string[];
}

function expectNoAccessKey(text: string, users = ["alice", "bob", "dave"]): void {
  for (const user of users) {
    for (const form of forms(accessKeyOf(user))) expect(text, `${user}'s access key`).not.toContain(form);
  }
}

async function callAs(user: string, args: Record<string, unknown> = {}) {
  const { tools, result } = await listFunctionsAs(example.mcpUrl, keyOf(user), args);
  return { tools, result, text: resultText(result) };
}

describe("mcp-tools example: one MCP tool, each user's own cloud key, none of it shown", () => {
  it("runs client.mjs end to end: each user sees their own functions and no access key", async () => {
    const run = await runAgentToExit(join(import.meta.dirname, "client.mjs"), {});
    expect(run.code, run.stderr).toBe(0);
    const line = (prefix: string) => run.stdout.split("\n").find((l) => l.startsWith(prefix)) ?? "";
    expect(line("alice: tools")).toBe("alice: tools list_functions");
    expect(line("alice: list_functions")).toContain('"functions":["alice-etl","alice-report"]');
    expect(line("bob: list_functions")).toContain('{"user_id":"alice"}');
    expect(line("bob: list_functions")).toContain('"functions":["bob-chatbot"]');
    expect(line("bob: list_functions")).not.toContain("alice-");
    expect(line("carol: list_functions")).toMatch(/-> error: .*aliyun_ak/);
    expect(run.stdout).toContain('"access_key":"[redacted]"');
    // That run's keys were made inside it: look for their shape (LTAI…, and "LTAI" in base64 or hex).
    expect(`${run.stdout}${run.stderr}`).not.toMatch(/LTAI[A-Za-z0-9]{20}|TFRBS|4c544149/i);
  });

  it("answers alice with alice's functions and bob with bob's, each called with their own key", async () => {
    const before = example.cloud.requests.length;
    const alice = await callAs("alice");
    const bob = await callAs("bob");
    expect(alice.tools).toEqual(["list_functions"]);
    expect(bob.tools).toEqual(["list_functions"]);
    expect(alice.result.isError).toBeFalsy();
    expect(bob.result.isError).toBeFalsy();
    expect(JSON.parse(alice.text)).toMatchObject({ account: "alice", functions: ["alice-etl", "alice-report"] });
    expect(JSON.parse(bob.text)).toMatchObject({ account: "bob", functions: ["bob-chatbot"] });
    // The cloud really got each user's key: the tool process held it, the client never did.
    expect(example.cloud.requests.slice(before)).toEqual([accessKeyOf("alice"), accessKeyOf("bob")]);
  });

  it("redacts the access key the cloud echoes back, raw and base64", async () => {
    const { text } = await callAs("alice");
    const body = JSON.parse(text);
    expect(body.debug).toEqual({ access_key: "[redacted]", signature: "[redacted]" });
    expectNoAccessKey(text);
  });

  it("ignores a user_id the model planted: bob still gets bob's account", async () => {
    const before = example.cloud.requests.length;
    const { text, result } = await callAs("bob", { user_id: "alice", region: "cn-shanghai" });
    expect(result.isError).toBeFalsy();
    expect(JSON.parse(text)).toMatchObject({ account: "bob", region: "cn-shanghai", functions: ["bob-chatbot"] });
    expect(text).not.toContain("alice");
    expect(example.cloud.requests.slice(before)).toEqual([accessKeyOf("bob")]);
  });

  it("gives a user without aliyun_ak a tool error naming it, and never calls the cloud", async () => {
    const before = example.cloud.requests.length;
    const { result, text, tools } = await callAs("carol");
    expect(tools).toEqual(["list_functions"]);
    expect(result.isError).toBe(true);
    expect(text).toContain("aliyun_ak");
    expect(example.cloud.requests.length).toBe(before);
  });

  it("redacts the key from a tool error too (the cloud quotes an unknown key in its 401)", async () => {
    const unknown = newAccessKey();
    laterKeys.push(unknown);
    await example.admin("PUT", "/users/dave/credentials/aliyun_ak", { value: unknown });
    const { result, text } = await callAs("dave");
    expect(result.isError).toBe(true);
    expect(text).toContain("cloud answered 401");
    expect(text).toContain("Specified access key is not found: [redacted]");
    for (const form of forms(unknown)) expect(text).not.toContain(form);
  });

  it("uses a rotated access key on the next call, and redacts the new one", async () => {
    await callAs("bob"); // bob's process is warm, with the old key in its environment
    const rotated = newAccessKey();
    laterKeys.push(rotated);
    example.cloud.accounts[rotated] = { account: "bob", functions: ["bob-chatbot", "bob-new"] };
    await example.admin("PUT", "/users/bob/credentials/aliyun_ak", { value: rotated });
    const before = example.cloud.requests.length;
    const { text } = await callAs("bob");
    expect(JSON.parse(text)).toMatchObject({ account: "bob", functions: ["bob-chatbot", "bob-new"] });
    expect(example.cloud.requests.slice(before)).toEqual([rotated]);
    for (const form of forms(rotated)) expect(text).not.toContain(form);
  });

  it("keeps every access key out of Keyward's logs and audit records", async () => {
    await callAs("alice");
    await callAs("bob");
    const audit = await example.admin<{ events: AuditEvent[] }>("GET", "/audit?action=mcp.tool_call&limit=500");
    const aliceCalls = audit.events.filter((e) => e.actor === "user:alice" && e.outcome === "success");
    expect(aliceCalls.length).toBeGreaterThan(0);
    // The cloud echoes the key twice per answer (raw and base64): both redactions are counted.
    expect(aliceCalls.at(-1)).toMatchObject({
      target: "mcp:cloud",
      details: { tool: "list_functions", redactions: 2 },
    });
    // Debug level: every request is logged, so there was something to look through.
    expect(example.logs()).toContain('"path":"/mcp/cloud"');
    for (const text of [JSON.stringify(audit), example.logs()]) {
      expectNoAccessKey(text);
      for (const key of laterKeys) for (const form of forms(key)) expect(text).not.toContain(form);
    }
  });
});
