import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { Progress } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  accountOf,
  eventually,
  mcpClient,
  setUserCredential,
  textOf,
  userKey,
  writeMcpConfig,
} from "../../test-support/mcp/fixtures.js";
import { type HttpUpstream, startHttpUpstream, ticketsOf } from "../../test-support/mcp/http-upstream.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";

// A tools/call whose request carries `_meta.progressToken` is answered as an event stream:
// the upstream's progress (redacted, with the client's token, bounded), then the result.
const ALICE_KEY = "AKIA-alice-progress-4f2a9c";
const BOB_KEY = "AKIA-bob-progress-7d1e3b";
const b64 = (s: string) => Buffer.from(s).toString("base64");

const unhandled: unknown[] = [];
const onUnhandled = (err: unknown) => unhandled.push(err);
beforeAll(() => {
  process.on("unhandledRejection", onUnhandled);
});
afterAll(() => {
  process.off("unhandledRejection", onUnhandled);
});

/** The SSE events of a finished `text/event-stream` body, parsed. */
function sseMessages(body: string): unknown[] {
  return body
    .split("\n\n")
    .filter((block) => block.trim() !== "")
    .map((block) => {
      const data = block
        .split("\n")
        .filter((l) => l.startsWith("data: "))
        .map((l) => l.slice(6))
        .join("\n");
      return JSON.parse(data);
    });
}

/** Polls an async check (records are written off the request path) until it holds. */
async function until<T>(check: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface AuditEvent {
  outcome?: string;
  code?: string;
  details?: { tool?: string; redactions?: number };
}

/** The user's mcp.tool_call records for this tool, once there are `n` of them. */
function toolCalls(kw: TestServer, user: string, tool: string, n = 1): Promise<AuditEvent[]> {
  return until(async () => {
    const r = await kw.admin("GET", `/audit?action=mcp.tool_call&principal=user:${user}&limit=100`);
    const found = (r.body.events as AuditEvent[]).filter((e) => e.details?.tool === tool);
    return found.length >= n ? found : undefined;
  }, `${n} audited ${tool} call(s)`);
}

describe("MCP gateway: progress of long tool calls", () => {
  let kw: TestServer;
  let alice: Client;
  let bob: Client;
  let aliceKey: string;

  beforeAll(async () => {
    kw = await startTestServer({}, { configFile: writeMcpConfig() });
    await setUserCredential(kw, "alice", "cloud_key", ALICE_KEY);
    await setUserCredential(kw, "bob", "cloud_key", BOB_KEY);
    aliceKey = await userKey(kw, "alice", ["mcp:cloud"]);
    alice = await mcpClient(kw.url, "cloud", aliceKey);
    bob = await mcpClient(kw.url, "cloud", await userKey(kw, "bob", ["mcp:cloud"]));
  });
  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await kw?.close();
  });

  it("the official client with onprogress gets each update in order, redacted, then the result", async () => {
    const seen: string[] = [];
    const updates: Progress[] = [];
    const r = await alice.callTool({ name: "slow_progress", arguments: { steps: 3 } }, undefined, {
      onprogress: (p) => {
        updates.push(p);
        seen.push(`progress ${p.progress}`);
      },
    });
    seen.push("result");
    expect(seen).toEqual(["progress 1", "progress 2", "progress 3", "result"]);
    // The stray update the upstream sent for a token it was never given went nowhere.
    expect(updates).toEqual([
      { progress: 1, total: 3, message: `working for ${accountOf(ALICE_KEY)}` },
      { progress: 2, total: 3, message: "using key [redacted]" },
      { progress: 3, total: 3, message: "key b64 [redacted]" },
    ]);
    expect(textOf(r)).toBe(`done for ${accountOf(ALICE_KEY)}`);

    const calls = await toolCalls(kw, "alice", "slow_progress");
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ outcome: "success", details: { redactions: 2 } });
    expect(JSON.stringify(calls)).not.toContain(ALICE_KEY);
  });

  it("answers with the client's own token as an event stream that ends after the response", async () => {
    const post = (body: unknown) =>
      fetch(`${kw.url}/mcp/cloud`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${aliceKey}`,
          accept: "application/json, text/event-stream",
          "content-type": "application/json",
        },
        body: JSON.stringify(body),
      });
    const call = (meta?: Record<string, unknown>) => ({
      jsonrpc: "2.0",
      id: 7,
      method: "tools/call",
      params: { name: "slow_progress", arguments: { steps: 3 }, ...(meta ? { _meta: meta } : {}) },
    });

    const streamed = await post(call({ progressToken: "tok-α" }));
    expect(streamed.status).toBe(200);
    expect(streamed.headers.get("content-type")).toBe("text/event-stream");
    const body = await streamed.text();
    expect(body).not.toContain(ALICE_KEY);
    expect(body).not.toContain(b64(ALICE_KEY));
    const messages = sseMessages(body) as Array<{ method?: string; params?: { progressToken?: unknown }; id?: number }>;
    expect(messages.map((m) => m.method ?? `response ${m.id}`)).toEqual([
      "notifications/progress",
      "notifications/progress",
      "notifications/progress",
      "response 7",
    ]);
    expect(messages.slice(0, 3).map((m) => m.params?.progressToken)).toEqual(["tok-α", "tok-α", "tok-α"]);

    // No token, or a batch: the plain JSON answer, untouched.
    const plain = await post(call());
    expect(plain.headers.get("content-type")).toMatch(/^application\/json/);
    expect(textOf(((await plain.json()) as { result: unknown }).result)).toBe(`done for ${accountOf(ALICE_KEY)}`);
    const batch = await post([call({ progressToken: 1 })]);
    expect(batch.headers.get("content-type")).toMatch(/^application\/json/);
    expect(((await batch.json()) as Array<{ id: number }>).map((m) => m.id)).toEqual([7]);
  });

  it("without onprogress the official client gets the same result and no progress", async () => {
    const r = await alice.callTool({ name: "slow_progress", arguments: { steps: 3 } });
    expect(textOf(r)).toBe(`done for ${accountOf(ALICE_KEY)}`);
  });

  it("two users' progress never cross", async () => {
    const mine: Record<string, Progress[]> = { alice: [], bob: [] };
    const [a, b] = await Promise.all([
      alice.callTool({ name: "slow_progress", arguments: { steps: 6 } }, undefined, {
        onprogress: (p) => mine.alice?.push(p),
      }),
      bob.callTool({ name: "slow_progress", arguments: { steps: 6 } }, undefined, {
        onprogress: (p) => mine.bob?.push(p),
      }),
    ]);
    expect(textOf(a)).toBe(`done for ${accountOf(ALICE_KEY)}`);
    expect(textOf(b)).toBe(`done for ${accountOf(BOB_KEY)}`);
    for (const [who, own, other] of [
      ["alice", ALICE_KEY, BOB_KEY],
      ["bob", BOB_KEY, ALICE_KEY],
    ] as const) {
      const updates = mine[who] ?? [];
      expect(updates.map((p) => p.progress)).toEqual([1, 2, 3, 4, 5, 6]);
      const working = updates.filter((p) => p.message?.startsWith("working for"));
      expect(working.map((p) => p.message)).toEqual([`working for ${accountOf(own)}`, `working for ${accountOf(own)}`]);
      expect(JSON.stringify(updates)).not.toContain(accountOf(other));
      expect(JSON.stringify(updates)).not.toContain(own);
    }
  });

  it("a flood of upstream progress reaches the client bounded: coalesced, the newest last", async () => {
    const COUNT = 20_000;
    const updates: Progress[] = [];
    const started = Date.now();
    const r = await alice.callTool({ name: "progress_flood", arguments: { count: COUNT } }, undefined, {
      onprogress: (p) => updates.push(p),
    });
    const seconds = (Date.now() - started) / 1000;
    expect(textOf(r)).toBe(`flooded ${COUNT}`);
    // 10 at once, then 10/s, plus the newest one owed when the result comes.
    expect(updates.length).toBeLessThanOrEqual(10 + Math.ceil(10 * seconds) + 1);
    expect(updates.at(-1)).toEqual({ progress: COUNT, total: COUNT, message: "last" });
    const values = updates.map((p) => p.progress);
    expect(values).toEqual([...values].sort((x, y) => x - y));
  });

  it("no unhandled rejection came out of any of it", () => {
    expect(unhandled).toEqual([]);
  });
});

describe("MCP gateway: progress from an HTTP upstream (event-stream answers)", () => {
  const TICKET = "tkt_progress_9a8b7c6d5e";
  let kw: TestServer;
  let tickets: HttpUpstream;

  beforeAll(async () => {
    tickets = await startHttpUpstream({ sse: true });
    kw = await startTestServer({}, { configFile: writeMcpConfig({ ticketsUrl: tickets.url }) });
    await setUserCredential(kw, "alice", "ticket_token", TICKET);
  });
  afterAll(async () => {
    await kw?.close();
    await tickets?.close();
  });

  it("relays the upstream's progress with the client's token, the injected header redacted", async () => {
    const client = await mcpClient(kw.url, "tickets", await userKey(kw, "alice", ["mcp:tickets"]));
    try {
      const updates: Progress[] = [];
      const r = await client.callTool({ name: "progress_tickets", arguments: {} }, undefined, {
        onprogress: (p) => updates.push(p),
      });
      expect(updates).toEqual([
        { progress: 1, message: "looking up" },
        { progress: 2, message: "as Bearer [redacted]" },
      ]);
      expect(textOf(r)).toBe(ticketsOf(`Bearer ${TICKET}`));
    } finally {
      await client.close();
    }
  });
});

describe("MCP gateway: a client that hangs up on a call with progress", () => {
  let kw: TestServer;

  beforeAll(async () => {
    // One process and one call in flight per user: a leaked lease or slot would show at once.
    kw = await startTestServer({}, { configFile: writeMcpConfig({ maxProcesses: 1, maxCallsPerUser: 1 }) });
    await setUserCredential(kw, "alice", "cloud_key", ALICE_KEY);
    await setUserCredential(kw, "bob", "cloud_key", BOB_KEY);
  });
  afterAll(async () => {
    await kw?.close();
  });

  it("cancels the upstream call, audits it, and the gateway serves the next calls", async () => {
    const marker = join(mkdtempSync(join(tmpdir(), "keyward-mcp-cancel-")), "cancelled");
    const aliceKey = await userKey(kw, "alice", ["mcp:cloud"]);
    const leaving = await mcpClient(kw.url, "cloud", aliceKey);
    let reported!: () => void;
    const firstProgress = new Promise<void>((r) => {
      reported = r;
    });
    const call = leaving
      .callTool({ name: "progress_until_cancelled", arguments: { marker } }, undefined, {
        onprogress: () => reported(),
      })
      .then(
        () => "answered",
        () => "failed",
      );
    await firstProgress;
    await leaving.close();
    expect(await call).toBe("failed");

    // The gateway saw the socket close, cancelled the upstream call and released everything.
    await eventually(() => existsSync(marker), "the upstream tool to see its cancellation");
    const calls = await toolCalls(kw, "alice", "progress_until_cancelled");
    expect(calls).toEqual([expect.objectContaining({ outcome: "failure", code: "cancelled" })]);
    const metrics = await (await fetch(`${kw.url}/metrics`)).text();
    expect(metrics).toMatch(/^keyward_mcp_tool_calls_total\{server="cloud",outcome="cancelled"\} 1$/m);

    // Alice's one call slot is free again, and her process is idle: bob's call may evict it.
    const back = await mcpClient(kw.url, "cloud", aliceKey);
    const bob = await mcpClient(kw.url, "cloud", await userKey(kw, "bob", ["mcp:cloud"]));
    try {
      expect(textOf(await back.callTool({ name: "whoami", arguments: {} }))).toContain(accountOf(ALICE_KEY));
      expect(textOf(await bob.callTool({ name: "whoami", arguments: {} }))).toContain(accountOf(BOB_KEY));
    } finally {
      await back.close();
      await bob.close();
    }
    expect(unhandled).toEqual([]);
  });
});

describe("MCP gateway: progress does not extend tool_timeout_ms", () => {
  let kw: TestServer;

  beforeAll(async () => {
    kw = await startTestServer({}, { configFile: writeMcpConfig({ toolTimeoutMs: 1000 }) });
    await setUserCredential(kw, "alice", "cloud_key", ALICE_KEY);
  });
  afterAll(async () => {
    await kw?.close();
  });

  it("a tool reporting every 100 ms forever still times out, its progress relayed until then", async () => {
    const client = await mcpClient(kw.url, "cloud", await userKey(kw, "alice", ["mcp:cloud"]));
    try {
      const updates: Progress[] = [];
      const r = await client.callTool({ name: "progress_until_cancelled", arguments: { every_ms: 100 } }, undefined, {
        onprogress: (p) => updates.push(p),
      });
      expect(r.isError).toBe(true);
      expect(textOf(r)).toBe("the tool timed out after 1000 ms; its server was restarted");
      expect(updates[0]).toEqual({ progress: 1, message: "started" });
    } finally {
      await client.close();
    }
  });
});
