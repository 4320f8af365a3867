import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRedactor } from "@keyward/sdk/redaction";
import { afterEach, describe, expect, it } from "vitest";
import { memoryCredentials, stdioSpec, textOf } from "../../test-support/mcp/fixtures.js";
import { recordingAudit } from "../../test-support/recording-audit.js";
import { AuditWriteError } from "../audit/audit-log.js";
import { createMcpGateway, type McpGateway } from "./mcp-gateway.js";
import { redactAcrossTextItems, redactJson } from "./mcp-redact.js";
import { withEveryTool } from "./mcp-tool-access.js";
import { childEnv, resolveUpstream, upstreamHeaders } from "./mcp-upstream-spec.js";

let gateway: McpGateway | undefined;
afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
});

describe("tool calls: credentials and audit", () => {
  it("a missing credential is a tool error naming it, audited, with no process started", async () => {
    const audit = recordingAudit();
    gateway = createMcpGateway({
      servers: new Map([["cloud", stdioSpec()]]),
      credentials: memoryCredentials(),
      audit,
      toolTimeoutMs: 5000,
      startTimeoutMs: 15_000,
      maxProcesses: 5,
      idleTimeoutMs: 60_000,
    });
    const r = await gateway.callTool("cloud", withEveryTool("dave"), { name: "whoami" }, { requestId: "req-1" });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/^missing credential cloud_key: /);
    expect(gateway.liveUpstreams).toBe(0);
    expect(audit.events).toEqual([
      {
        actor: "user:dave",
        action: "mcp.tool_call",
        target: "mcp:cloud",
        outcome: "failure",
        code: "missing_credential",
        requestId: "req-1",
        details: { tool: "whoami", redactions: 0 },
      },
    ]);
  });

  it("fails closed: while the audit log is failing, the result is withheld", async () => {
    const credentials = memoryCredentials();
    credentials.set("alice", "cloud_key", "AKIA-alice-audit-0001");
    const outcomes: string[] = [];
    gateway = createMcpGateway({
      servers: new Map([["cloud", stdioSpec()]]),
      credentials,
      audit: {
        ...recordingAudit(),
        recordToken: async () => {
          throw new AuditWriteError("the audit log is failing; token not issued");
        },
      },
      onToolCall: (_s, o) => outcomes.push(o),
      toolTimeoutMs: 5000,
      startTimeoutMs: 15_000,
      maxProcesses: 5,
      idleTimeoutMs: 60_000,
    });
    await expect(gateway.callTool("cloud", withEveryTool("alice"), { name: "print_env" })).rejects.toThrow(
      /audit log is unavailable; the tool result was withheld/,
    );
    expect(outcomes).toEqual(["audit_unavailable"]);
  });
});

describe("HTTP upstreams", () => {
  it("an unreachable one is a clean tool error", async () => {
    const credentials = memoryCredentials();
    credentials.set("alice", "tok", "tkt-alice-0001");
    const spec = resolveUpstream(
      "tickets",
      { url: "http://127.0.0.1:9/mcp", headers_from_user_credentials: { Authorization: "Bearer {tok}" } },
      "/tmp",
    );
    gateway = createMcpGateway({
      servers: new Map([["tickets", spec]]),
      credentials,
      audit: recordingAudit(),
      toolTimeoutMs: 5000,
      startTimeoutMs: 15_000,
      maxProcesses: 5,
      idleTimeoutMs: 60_000,
    });
    const r = await gateway.callTool("tickets", withEveryTool("alice"), { name: "my_tickets" });
    expect(r).toEqual({ isError: true, content: [{ type: "text", text: "the upstream MCP server is unavailable" }] });
  });
});

describe("resolving configured upstreams", () => {
  it("resolves relative command, args and cwd against the config folder; bare names stay for PATH", () => {
    const dir = mkdtempSync(join(tmpdir(), "keyward-mcp-spec-"));
    writeFileSync(join(dir, "tools.js"), "");
    const spec = resolveUpstream(
      "cloud",
      {
        command: "./bin/run",
        args: ["tools.js", "--flag", "missing.js", "/abs/x.js", "word"],
        env: { MODE: "x" },
        env_from_user_credentials: { AK: "ak", ALSO_AK: "ak", SK: "sk" },
        cwd: "work",
      },
      dir,
    );
    expect(spec).toMatchObject({
      kind: "stdio",
      command: join(dir, "bin/run"),
      args: [join(dir, "tools.js"), "--flag", "missing.js", "/abs/x.js", "word"],
      cwd: join(dir, "work"),
      credentials: ["ak", "sk"],
    });
    const bare = resolveUpstream("n", { command: "node", args: [], env: {}, env_from_user_credentials: {} }, dir);
    expect(bare).toMatchObject({ command: "node", cwd: dir });
  });

  it("a child's env is the minimal base + the server's env + the user's credentials, nothing else", () => {
    const spec = resolveUpstream(
      "cloud",
      { command: "node", args: [], env: { MODE: "x" }, env_from_user_credentials: { AK: "ak", C: "constructor" } },
      "/tmp",
    );
    if (spec.kind !== "stdio") throw new Error("stdio expected");
    const env = childEnv(
      spec,
      { ak: "secret-ak" },
      { PATH: "/bin", HOME: "/h", KEYWARD_MASTER_KEY: "mk", AWS_SECRET: "x" },
    );
    expect(env).toEqual({ PATH: "/bin", HOME: "/h", MODE: "x", AK: "secret-ak" });
  });

  it("HTTP headers come from templates; an unset credential leaves its header out; CR/LF is refused", () => {
    const spec = resolveUpstream(
      "tickets",
      {
        url: "http://127.0.0.1:1/mcp",
        headers_from_user_credentials: { Authorization: "Bearer {tok}", "X-Org": "{org}" },
      },
      "/tmp",
    );
    if (spec.kind !== "http") throw new Error("http expected");
    expect(spec.credentials).toEqual(["org", "tok"]);
    expect(upstreamHeaders(spec, { tok: "t1" })).toEqual({ Authorization: "Bearer t1" });
    expect(() => upstreamHeaders(spec, { tok: "t1\r\nX-Evil: 1" })).toThrow(/cannot be sent in a header/);
    try {
      upstreamHeaders(spec, { tok: "t1\r\nX-Evil: 1" });
    } catch (err) {
      expect((err as Error).message).not.toContain("t1");
    }
  });
});

describe("redaction of results", () => {
  const redactor = createRedactor(["s3cr3t-value-42"]);

  it("keeps text items apart when no secret straddles them", () => {
    const content = [
      { type: "text", text: "a" },
      { type: "text", text: "b" },
    ];
    expect(redactAcrossTextItems(content, redactor)).toEqual({ content, count: 0 });
  });

  it("a number whose digits are a secret becomes the marker (a PIN in structuredContent)", () => {
    const pin = createRedactor(["82736450"]);
    const { value, count } = redactJson({ structuredContent: { pin: 82736450, ok: 1, big: 182736450.5 } }, pin);
    expect(value).toEqual({ structuredContent: { pin: "[redacted]", ok: 1, big: "[redacted]" } });
    expect(count).toBe(2);
  });

  it("binary fields are decoded whatever their layout and re-encoded canonically", () => {
    const b64 = Buffer.from("x s3cr3t-value-42 y").toString("base64");
    const wrapped = b64.replace(/.{4}/g, "$&\r\n");
    const { value } = redactJson(
      {
        content: [
          { type: "image", data: wrapped, mimeType: "image/png" },
          { type: "audio", data: ` ${b64} `, mimeType: "audio/wav" },
          { type: "resource", resource: { uri: "file:///b", blob: wrapped } },
        ],
      },
      redactor,
    );
    const clean = Buffer.from("x [redacted] y").toString("base64");
    expect(value.content.map((c) => ("data" in c ? c.data : c.resource.blob))).toEqual([clean, clean, clean]);
  });

  it("redacts keys, nested values and blob bytes, and counts them", () => {
    const blob = Buffer.from("x s3cr3t-value-42 y").toString("base64");
    const { value, count } = redactJson({ a: ["s3cr3t-value-42"], "s3cr3t-value-42": 1, r: { blob } }, redactor);
    expect(value).toEqual({
      a: ["[redacted]"],
      "[redacted]": 1,
      r: { blob: Buffer.from("x [redacted] y").toString("base64") },
    });
    expect(count).toBe(3);
  });
});
