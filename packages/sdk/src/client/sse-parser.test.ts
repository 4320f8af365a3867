import { describe, expect, it } from "vitest";
import { type SseEvent, SseParser } from "./sse-parser.js";

function parse(chunks: string[], lastEventId = "") {
  const events: SseEvent[] = [];
  let comments = 0;
  const p = new SseParser({ event: (e) => events.push(e), comment: () => comments++ }, lastEventId);
  for (const c of chunks) p.push(c);
  return { events, comments, lastEventId: p.lastEventId };
}

describe("SseParser", () => {
  it("parses Keyward's events with ids, and counts heartbeat comments", () => {
    const out = parse([': heartbeat\n\nid: 7\nevent: changed\ndata: {"name":"a","version":2}\n\n: hb\n\n']);
    expect(out.events).toEqual([{ type: "changed", data: '{"name":"a","version":2}', lastEventId: "7" }]);
    expect(out.comments).toBe(2);
    expect(out.lastEventId).toBe("7");
  });

  it("handles any chunking, CRLF split across chunks, CR and LF line ends", () => {
    const text =
      "id: 1\r\nevent: changed\r\ndata: x\r\n\r\nid: 2\revent: removed\rdata: y\r\rid: 3\nevent: changed\ndata: z\n\n";
    const whole = parse([text]).events;
    expect(whole.map((e) => [e.type, e.data, e.lastEventId])).toEqual([
      ["changed", "x", "1"],
      ["removed", "y", "2"],
      ["changed", "z", "3"],
    ]);
    for (let size = 1; size < 8; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
      expect(parse(chunks).events).toEqual(whole);
    }
  });

  it("joins multi-line data, keeps the id across events, strips one space and a BOM", () => {
    const out = parse(["\uFEFFid: 9\ndata:  two spaces\ndata:b\n\ndata: next\n\n"]);
    expect(out.events).toEqual([
      { type: "message", data: " two spaces\nb", lastEventId: "9" },
      { type: "message", data: "next", lastEventId: "9" },
    ]);
  });

  it("does not dispatch an event without data, but still takes its id", () => {
    const out = parse(["id: 4\nevent: changed\n\n"], "3");
    expect(out.events).toEqual([]);
    expect(out.lastEventId).toBe("4");
  });

  it("keeps the reconnect id it started with until a new one arrives, and ignores ids with NUL", () => {
    expect(parse(["data: a\n\n"], "12").events[0]!.lastEventId).toBe("12");
    expect(parse(["id: a\0b\ndata: a\n\n"], "12").events[0]!.lastEventId).toBe("12");
  });

  it("refuses an endless line instead of buffering it", () => {
    expect(() => parse(["data: ", "x".repeat(2 << 20)])).toThrow(/too long/);
  });
});
