import { EventEmitter } from "node:events";
import type { ServerResponse } from "node:http";
import { describe, expect, it } from "vitest";
import { openProgressStream } from "./mcp-progress-stream.js";

/** Just enough of a ServerResponse: records what is written; the test decides backpressure. */
function fakeResponse() {
  const res = Object.assign(new EventEmitter(), {
    written: [] as string[],
    headers: {} as Record<string, string>,
    writableNeedDrain: false,
    writableFinished: false,
    destroyed: false,
    writeHead(_status: number, headers: Record<string, string>) {
      res.headers = headers;
      return res;
    },
    flushHeaders() {},
    write(chunk: string) {
      res.written.push(chunk);
      return true;
    },
    end(chunk?: string) {
      if (chunk !== undefined) res.written.push(chunk);
      res.writableFinished = true;
      res.emit("close");
      return res;
    },
  });
  return res;
}

/** Every SSE message written, parsed, in order. */
const messages = (res: ReturnType<typeof fakeResponse>) =>
  res.written
    .join("")
    .split("\n\n")
    .filter((b) => b !== "")
    .map((b) => {
      expect(b.startsWith("event: message\ndata: ")).toBe(true);
      return JSON.parse(b.slice("event: message\ndata: ".length)) as {
        method?: string;
        params?: { progressToken: unknown; progress: number; message?: string };
        id?: number;
      };
    });

describe("progress event stream", () => {
  const frozen = () => 1_000;

  it("sends a burst at once, then coalesces: the newest pending update goes before the response", () => {
    const res = fakeResponse();
    const stream = openProgressStream(res as unknown as ServerResponse, {
      token: "t1",
      requestId: "req-1",
      burst: 3,
      ratePerSecond: 10,
      now: frozen,
    });
    expect(res.headers["content-type"]).toBe("text/event-stream");
    for (let i = 1; i <= 1000; i++) stream.progress({ progress: i, message: `step ${i}` });
    expect(res.written).toHaveLength(3);
    stream.finish({ jsonrpc: "2.0", id: 1, result: {} });
    const sent = messages(res);
    expect(sent.map((m) => m.params?.progress ?? `response ${m.id}`)).toEqual([1, 2, 3, 1000, "response 1"]);
    expect(sent.slice(0, 4).every((m) => m.params?.progressToken === "t1")).toBe(true);
  });

  it("refills at the configured rate", () => {
    let now = 0;
    const res = fakeResponse();
    const stream = openProgressStream(res as unknown as ServerResponse, {
      token: 5,
      requestId: "req-2",
      burst: 1,
      ratePerSecond: 10,
      now: () => now,
    });
    stream.progress({ progress: 1 });
    stream.progress({ progress: 2 });
    expect(res.written).toHaveLength(1);
    now = 100;
    stream.progress({ progress: 3 });
    expect(messages(res).map((m) => m.params?.progress)).toEqual([1, 3]);
    stream.finish({ jsonrpc: "2.0", id: 2, result: {} });
  });

  it("writes nothing while the socket is backpressured, then only the newest update", () => {
    const res = fakeResponse();
    const stream = openProgressStream(res as unknown as ServerResponse, {
      token: "t",
      requestId: "req-3",
      now: frozen,
    });
    res.writableNeedDrain = true;
    for (let i = 1; i <= 5; i++) stream.progress({ progress: i });
    expect(res.written).toHaveLength(0);
    res.writableNeedDrain = false;
    res.emit("drain");
    expect(messages(res).map((m) => m.params?.progress)).toEqual([5]);
    stream.finish({ jsonrpc: "2.0", id: 3, result: {} });
  });

  it("after the client hung up, writes nothing more", () => {
    const res = fakeResponse();
    const stream = openProgressStream(res as unknown as ServerResponse, { token: "t", requestId: "req-4" });
    res.emit("close");
    expect(stream.gone).toBe(true);
    stream.progress({ progress: 1 });
    stream.finish({ jsonrpc: "2.0", id: 4, result: {} });
    expect(res.written).toHaveLength(0);
  });

  it("keeps a silent call's stream alive with SSE comments, and stops when the result is written", async () => {
    const res = fakeResponse();
    const stream = openProgressStream(res as unknown as ServerResponse, { token: 1, requestId: "r", heartbeatMs: 5 });
    await new Promise<void>((resolve) => {
      const write = res.write;
      res.write = (chunk: string) => {
        const ok = write(chunk);
        if (chunk === ": keep-alive\n\n") resolve();
        return ok;
      };
    });
    stream.finish({ jsonrpc: "2.0", id: 1, result: { content: [] } });
    const after = res.written.length;
    await new Promise((r) => setTimeout(r, 30));
    expect(res.written.length).toBe(after);
    expect(res.written.at(-1)).toContain('"result"');
  });
});
